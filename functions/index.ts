import { createApp } from './app';
import { runScheduled } from './scheduled';

export { AuthDirectory } from '../durable-objects/auth-directory';
export { ChatRoom } from '../durable-objects/chat-room';
export { PushCenter } from '../durable-objects/push-center';
export { RateLimiter } from '../durable-objects/rate-limiter';
export { StreamRegistry } from '../durable-objects/stream-registry';
export { UsageMeter } from '../durable-objects/usage-meter';

const app = createApp();

export default {
  fetch: app.fetch,
  scheduled(controller, env, ctx): void {
    ctx.waitUntil(runScheduled(env, new Date(controller.scheduledTime)));
  },
} satisfies ExportedHandler<Env>;
