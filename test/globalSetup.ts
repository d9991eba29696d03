import { startStunServer } from './support/stun.js';

// One STUN server for every test file's werift clients; the workers find it in the environment.
export default async function setup(): Promise<() => Promise<void>> {
  const stun = await startStunServer();
  process.env.TEST_STUN_URL = stun.url;
  return () => stun.close();
}
