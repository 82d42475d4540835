/** The aggregate hash of an empty set: SHA-256 of the empty string. Also what an agent that never pushed has. */
export const EMPTY_AGGREGATE_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
