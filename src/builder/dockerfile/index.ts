// Public surface of the Dockerfile front end: the parser, word expansion and
// .dockerignore matching.

export { parseDockerfile, INSTRUCTIONS } from './parse.js';
export type { Dockerfile, Instruction, Heredoc } from './parse.js';
export { expandWord, expandWords, removeQuotes, EXPANDING_INSTRUCTIONS } from './expand.js';
export type { Env } from './expand.js';
export { parseDockerignore, IgnoreMatcher } from './ignore.js';
