/**
 * The API's shapes, as the server defines them (`functions/core/shapes` → the OpenAPI document → `generated/api.ts`):
 * names for the components a client uses most.
 */
import type { components, paths } from './generated/api.js';

export type { components, paths };
type Schemas = components['schemas'];

export type Chat = Schemas['Chat'];
export type ChatStatus = Schemas['ChatStatus'];
export type LastError = Schemas['LastError'];
export type Message = Schemas['Message'];
export type SearchResult = Schemas['SearchResult'];
export type MessagePart = Schemas['MessagePart'];
export type Part = Schemas['Part'];
export type QueuedMessage = Schemas['QueuedMessage'];
export type Usage = Schemas['Usage'];
export type Provider = Schemas['ChatProvider'];
export type ModelConfig = Schemas['ChatModelConfig'];
export type UsableModel = Schemas['ChatModel'];
export type Pricing = Schemas['ChatModelPricing'];
export type SpendLimit = Schemas['SpendLimit'];
export type SpendLimitState = Schemas['SpendLimitState'];
export type UsageReport = Schemas['UsageReport'];
export type UsageTotals = Schemas['UsageTotals'];
export type UsageGroup = Schemas['UsageGroup'];
export type User = Schemas['User'];
export type AdminUser = Schemas['AdminUser'];
export type StreamTicket = Schemas['StreamTicket'];
export type ToolCallPart = Schemas['ToolCallPart'];
export type ToolResultPart = Schemas['ToolResultPart'];
export type PendingToolCall = Schemas['PendingToolCall'];
export type ToolApproval = Schemas['ToolApproval'];
export type McpServer = Schemas['McpServer'];
export type Tool = Schemas['Tool'];
export type ChatTools = Schemas['ChatTools'];
export type StreamStats = Schemas['StreamStats'];
export type ChatAccess = Schemas['ChatAccess'];
export type Group = Schemas['Group'];
export type GroupMember = Schemas['GroupMember'];
export type ChatAcl = Schemas['ChatAcl'];
export type ShareLink = Schemas['ShareLink'];
export type NewShareLink = Schemas['NewShareLink'];
export type SharedChat = Schemas['SharedChat'];
export type StreamEvent = Schemas['StreamEvent'];
export type ChatExport = Schemas['ChatExport'];
export type ForkedFrom = Schemas['ForkedFrom'];
export type ErrorBody = Schemas['Error'];
export type ChatFile = Schemas['ChatFile'];
export type FilePart = Schemas['FilePart'];
export type FileInputPart = Schemas['FileInputPart'];
/** One field's problem in a 400's `validations`. */
export type Validation = NonNullable<ErrorBody['validations']>[number];

/** The text of a message's text parts (reasoning and other parts left out). */
export function textOf(content: readonly MessagePart[]): string {
  return content.map((p) => (p.type === 'text' && 'text' in p && typeof p.text === 'string' ? p.text : '')).join('');
}
