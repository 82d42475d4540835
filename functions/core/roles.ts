import { z } from 'zod';

/** Deployment roles: `owner` administers the deployment, `member` chats. */
export const Role = z.enum(['owner', 'member']);
export type Role = z.infer<typeof Role>;
