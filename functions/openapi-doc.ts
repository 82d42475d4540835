/**
 * The OpenAPI document, built without serving anything: `scripts/sdk-gen.mjs` exports it at build time and generates
 * the SDK's types from it. It is the document `GET /api/v2/openapi.json` serves.
 */
import { createApp, OPENAPI_CONFIG } from './app';

export function openApiDocument(): ReturnType<ReturnType<typeof createApp>['getOpenAPI31Document']> {
  return createApp().getOpenAPI31Document(OPENAPI_CONFIG);
}
