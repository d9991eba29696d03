import {
  GraphQLError, Kind, getNamedType, isListType, getNullableType,
  type FieldNode, type FragmentDefinitionNode, type GraphQLField, type GraphQLOutputType, type GraphQLSchema,
  type OperationDefinitionNode, type SelectionSetNode, type ValidationContext, type ValidationRule, type ValueNode,
  isObjectType, isInterfaceType,
} from 'graphql';

/** How deep and how costly one operation may be; checked before anything runs. */
export interface QueryLimits {
  /** Fields nested in fields, introspection not counted. */
  maxDepth: number;
  /** Estimated objects fetched (see `operationCost`). */
  maxCost: number;
}

export const DEFAULT_LIMITS: QueryLimits = { maxDepth: 8, maxCost: 20_000 };

/** A list field without a size argument is counted as this many items. */
export const DEFAULT_LIST_SIZE = 50;
/** Arguments that bound a list's size. */
const SIZE_ARGS = ['first', 'limit'];

/**
 * Depth and cost of an operation, fragments expanded. Cost: every field that returns an object counts 1,
 * times the size of each list above it; a list's size is its `first`/`limit` argument (a variable's
 * value when it is known, else the field's largest allowed value; its default when not given) or that of the page field it is
 * in (`events(first: 5) { events { … } }`), else `DEFAULT_LIST_SIZE`.
 */
export function operationCost(schema: GraphQLSchema, op: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables?: Readonly<Record<string, unknown>>): { depth: number; cost: number } {
  const root = op.operation === 'query' ? schema.getQueryType() : op.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  let maxDepth = 0;
  // `page`: the size asked for by the field above, when it returns a page object (its list inside has it).
  const walk = (set: SelectionSetNode, parent: GraphQLOutputType | null | undefined, depth: number, seen: ReadonlySet<string>, page: number | null): number => {
    let cost = 0;
    const named = parent ? getNamedType(parent) : null;
    const fields = named && (isObjectType(named) || isInterfaceType(named)) ? named.getFields() : {};
    for (const sel of set.selections) {
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const f = fragments.get(sel.name.value);
        // A fragment that spreads itself is refused by graphql's own rules; not walked twice here.
        if (f && !seen.has(f.name.value)) cost += walk(f.selectionSet, schema.getType(f.typeCondition.name.value) as GraphQLOutputType, depth, new Set([...seen, f.name.value]), page);
        continue;
      }
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        const t = sel.typeCondition ? (schema.getType(sel.typeCondition.name.value) as GraphQLOutputType) : parent;
        cost += walk(sel.selectionSet, t, depth, seen, page);
        continue;
      }
      const name = sel.name.value;
      // Introspection answers from the schema itself: neither deep nor costly.
      if (name.startsWith('__')) continue;
      const field = fields[name];
      if (!sel.selectionSet) {
        maxDepth = Math.max(maxDepth, depth + 1);
        continue;
      }
      const asked = field ? listSize(field, sel, variables) : null;
      if (field && isListType(getNullableType(field.type))) {
        const size = asked ?? page ?? DEFAULT_LIST_SIZE;
        cost += size * (1 + walk(sel.selectionSet, field.type, depth + 1, seen, null));
      } else {
        cost += 1 + walk(sel.selectionSet, field?.type, depth + 1, seen, asked);
      }
    }
    maxDepth = Math.max(maxDepth, depth);
    return cost;
  };
  const cost = walk(op.selectionSet, root, 0, new Set(), null);
  return { depth: maxDepth, cost };
}

/** The size a field's `first`/`limit` argument asks for, or null when it has none. */
function listSize(field: GraphQLField<unknown, unknown>, node: FieldNode, variables?: Readonly<Record<string, unknown>>): number | null {
  for (const name of SIZE_ARGS) {
    const def = field.args.find((a) => a.name === name);
    if (!def) continue;
    const arg = node.arguments?.find((a) => a.name.value === name);
    const declaredMax = Number(def.extensions?.max ?? DEFAULT_LIST_SIZE);
    if (!arg) return typeof def.defaultValue === 'number' ? def.defaultValue : declaredMax;
    const v = literal(arg.value, variables);
    return typeof v === 'number' && Number.isFinite(v) ? Math.max(0, Math.min(v, declaredMax)) : declaredMax;
  }
  return null;
}

function literal(v: ValueNode, variables?: Readonly<Record<string, unknown>>): unknown {
  if (v.kind === Kind.INT || v.kind === Kind.FLOAT) return Number(v.value);
  if (v.kind === Kind.VARIABLE) return variables?.[v.name.value];
  return undefined;
}

/**
 * A validation rule refusing operations deeper or costlier than the limits, before any resolver runs.
 * Variables are known over HTTP and WebSocket alike (the rule is made per request).
 */
export function limitsRule(limits: QueryLimits, variables?: Readonly<Record<string, unknown>>): ValidationRule {
  return (context: ValidationContext) => {
    const doc = context.getDocument();
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    return {
      OperationDefinition(op) {
        const { depth, cost } = operationCost(context.getSchema(), op, fragments, variables);
        const name = op.name ? `'${op.name.value}'` : 'the operation';
        if (depth > limits.maxDepth) {
          context.reportError(new GraphQLError(`${name} is ${depth} fields deep; at most ${limits.maxDepth} are allowed`, { nodes: [op], extensions: { code: 'QUERY_TOO_DEEP', depth, maxDepth: limits.maxDepth } }));
        }
        if (cost > limits.maxCost) {
          context.reportError(new GraphQLError(`${name} may fetch about ${cost} objects; at most ${limits.maxCost} are allowed (ask for smaller pages with first/limit)`, { nodes: [op], extensions: { code: 'QUERY_TOO_COSTLY', cost, maxCost: limits.maxCost } }));
        }
      },
    };
  };
}
