import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { InvalidStateError, UnavailableError, counter, createLogger, gauge, redactUrl, type CameraConfig, type Config } from '@cctv/core';

const log = createLogger('recorder:mqtt');

const dropped = counter('cctv_mqtt_dropped_total', 'MQTT messages not queued because the queue to the broker was full.');
const queued = gauge('cctv_mqtt_queued_messages', 'MQTT messages waiting for the broker\'s acknowledgement (PUBACK).');
const connectedGauge = gauge('cctv_mqtt_connected', 'Whether the MQTT client is connected to the broker (1) or not (0).');

export type MqttConfig = NonNullable<Config['alerts']['mqtt']>;

export interface MqttPublisherOptions {
  config: MqttConfig;
  /** This node's id, in the client id. */
  node: string;
  /** Messages waiting for the broker (while it is away) beyond this are dropped and counted; default 1000. */
  maxQueue?: number;
  /** Wait between reconnects, ms; default 2000. */
  reconnectMs?: number;
}

/** The retained state payloads, as a Home Assistant binary_sensor reads them. */
export const ON = 'ON';
export const OFF = 'OFF';

/** The topics of a prefix: what a Home Assistant binary_sensor (or anything else) subscribes to. */
export function mqttTopics(prefix: string) {
  return {
    /** `online` / `offline` (retained; `offline` is the client's last will). */
    status: `${prefix}/status`,
    /** `ON` while a camera has an alerted event going on, else `OFF` (retained). */
    motion: (camera: string) => `${prefix}/${camera}/motion`,
    /** The same, per include zone (retained). */
    zone: (camera: string, zone: string) => `${prefix}/${camera}/zone/${zone}/motion`,
    /** The event as JSON when it starts and ends (not retained). */
    event: (camera: string) => `${prefix}/${camera}/event`,
  };
}

/** Home Assistant MQTT discovery of a camera's motion binary_sensor: its topic and retained config. */
export function homeAssistantDiscovery(c: MqttConfig, camera: Pick<CameraConfig, 'id' | 'name'>): { topic: string; config: Record<string, unknown> } {
  const t = mqttTopics(c.topicPrefix);
  const objectId = `cctv_${camera.id}_motion`;
  return {
    topic: `${c.discoveryPrefix}/binary_sensor/${objectId}/config`,
    config: {
      // With the device's name in front, Home Assistant shows it as "<camera> Motion".
      name: 'Motion',
      unique_id: objectId,
      state_topic: t.motion(camera.id),
      device_class: 'motion',
      payload_on: ON,
      payload_off: OFF,
      availability_topic: t.status,
      payload_available: 'online',
      payload_not_available: 'offline',
      device: { identifiers: [`cctv_${camera.id}`], name: camera.name ?? camera.id, manufacturer: 'cctv' },
    },
  };
}

/**
 * Publishes motion to an MQTT broker (QoS 1): retained ON/OFF states per camera and zone, the events
 * as JSON, Home Assistant discovery, and the availability topic (`offline` as the last will). Never
 * blocks its caller: a publish returns at once with a promise of the broker's PUBACK. The client
 * reconnects by itself and sends what waited once it is back; past `maxQueue` waiting messages, new
 * ones are refused (and counted) rather than piling up.
 */
export class MqttPublisher {
  readonly topics: ReturnType<typeof mqttTopics>;
  readonly #o: MqttPublisherOptions;
  readonly #maxQueue: number;
  #client: MqttClient | null = null;
  readonly #announced = new Map<string, Pick<CameraConfig, 'id' | 'name'>>();
  readonly #waiting = new Set<(error: Error) => void>();
  #closed = false;
  #errorsLogged = 0;

  constructor(o: MqttPublisherOptions) {
    this.#o = o;
    this.#maxQueue = o.maxQueue ?? 1000;
    this.topics = mqttTopics(o.config.topicPrefix);
  }

  /** Whether the client is connected to the broker now. */
  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  /** Messages waiting for the broker's acknowledgement. */
  get queued(): number {
    return this.#waiting.size;
  }

  /** Connects (in the background: publishing may start at once; messages wait for the connection). */
  start(): void {
    if (this.#closed) throw new InvalidStateError('the MQTT publisher is closed');
    if (this.#client) return;
    const c = this.#o.config;
    const client = mqtt.connect(c.url, {
      clientId: `cctv_${this.#o.node}_${randomBytes(4).toString('hex')}`.slice(0, 64),
      ...(c.username !== undefined ? { username: c.username } : {}),
      ...(c.password !== undefined ? { password: c.password } : {}),
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: this.#o.reconnectMs ?? 2000,
      // MQTT 3.1.1 §3.1.2.5: the broker publishes the will when the connection is lost without a DISCONNECT.
      will: { topic: this.topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.#client = client;
    client.on('connect', () => {
      this.#errorsLogged = 0;
      connectedGauge.set(1);
      log.info({ broker: redactUrl(c.url) }, 'connected to the MQTT broker');
      // Availability, and discovery again: a broker without persistence forgets retained messages.
      void this.#publish(this.topics.status, 'online', true).catch(() => {});
      for (const camera of this.#announced.values()) void this.#discover(camera).catch(() => {});
    });
    client.on('offline', () => connectedGauge.set(0));
    client.on('close', () => connectedGauge.set(0));
    client.on('error', (error) => {
      // Logged once per outage; the client keeps reconnecting.
      if (this.#errorsLogged++ === 0) log.warn({ broker: redactUrl(c.url), err: error }, 'the MQTT broker cannot be reached; retrying');
      else log.debug({ err: error }, 'MQTT client error');
    });
  }

  /** Publishes the Home Assistant discovery config of a camera, once per camera (and again after each reconnect). */
  announce(camera: Pick<CameraConfig, 'id' | 'name'>): void {
    if (!this.#o.config.homeAssistant) return;
    const known = this.#announced.get(camera.id);
    if (known && known.name === camera.name) return;
    this.#announced.set(camera.id, { id: camera.id, name: camera.name });
    void this.#discover(camera).catch((error: unknown) => log.debug({ camera: camera.id, err: error }, 'discovery config not published'));
  }

  #discover(camera: Pick<CameraConfig, 'id' | 'name'>): Promise<void> {
    const d = homeAssistantDiscovery(this.#o.config, camera);
    return this.#publish(d.topic, JSON.stringify(d.config), true);
  }

  /** The retained ON/OFF state of a camera. */
  motion(camera: string, on: boolean): Promise<void> {
    return this.#publish(this.topics.motion(camera), on ? ON : OFF, true);
  }

  /** The retained ON/OFF state of one zone of a camera. */
  zone(camera: string, zone: string, on: boolean): Promise<void> {
    return this.#publish(this.topics.zone(camera, zone), on ? ON : OFF, true);
  }

  /** An event message (JSON, not retained). */
  event(camera: string, body: unknown): Promise<void> {
    return this.#publish(this.topics.event(camera), JSON.stringify(body), false);
  }

  /** Publishes at QoS 1; resolves on the broker's PUBACK, rejects when the queue is full or the publisher closes first. */
  #publish(topic: string, payload: string, retain: boolean): Promise<void> {
    if (this.#closed || !this.#client) return Promise.reject(new InvalidStateError(this.#closed ? 'the MQTT publisher is closed' : 'the MQTT publisher is not started'));
    if (this.#waiting.size >= this.#maxQueue) {
      dropped.inc();
      return Promise.reject(new UnavailableError('MQTT_QUEUE_FULL', `${this.#waiting.size} MQTT messages already wait for the broker; this one is dropped`));
    }
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.#waiting.delete(fail);
        queued.set(this.#waiting.size);
        reject(error);
      };
      this.#waiting.add(fail);
      queued.set(this.#waiting.size);
      this.#client!.publish(topic, payload, { qos: 1, retain }, (error) => {
        if (error) return fail(error);
        if (settled) return;
        settled = true;
        this.#waiting.delete(fail);
        queued.set(this.#waiting.size);
        resolve();
      });
    });
  }

  /** Says `offline` (when connected), disconnects; what still waits for the broker is rejected. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const client = this.#client;
    if (client?.connected) {
      await Promise.race([this.#publish(this.topics.status, 'offline', true).catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    this.#closed = true;
    for (const fail of [...this.#waiting]) fail(new InvalidStateError('the MQTT publisher closed before the broker acknowledged the message'));
    if (client) {
      // A clean DISCONNECT when connected (the broker then keeps the will to itself); else stop reconnecting at once.
      if (client.connected) await Promise.race([client.endAsync(false).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      if (!client.disconnected) await client.endAsync(true).catch(() => {});
      client.removeAllListeners();
      // A listener for late socket errors while it finishes closing.
      client.on('error', () => {});
    }
    connectedGauge.set(0);
  }
}
