// One error vocabulary for shale. Every module throws ShaleError with a code and,
// where there is one, a hint that tells the user what to do. The CLI maps codes to
// exit codes once (cli/main.ts); the API server (later) maps them to HTTP statuses.

export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Conflict'
  | 'Unavailable'
  | 'PermissionDenied'
  | 'NotImplemented'
  | 'DataLoss'
  | 'Internal';

export class ShaleError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShaleError';
    this.code = code;
    this.hint = hint;
  }
  /** message plus hint, as printed by the CLI */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

export const notFound = (msg: string, hint?: string) => new ShaleError('NotFound', msg, hint);
export const alreadyExists = (msg: string, hint?: string) => new ShaleError('AlreadyExists', msg, hint);
export const invalidArgument = (msg: string, hint?: string) => new ShaleError('InvalidArgument', msg, hint);
export const failedPrecondition = (msg: string, hint?: string) => new ShaleError('FailedPrecondition', msg, hint);
export const conflict = (msg: string, hint?: string) => new ShaleError('Conflict', msg, hint);
export const unavailable = (msg: string, hint?: string) => new ShaleError('Unavailable', msg, hint);
export const permissionDenied = (msg: string, hint?: string) => new ShaleError('PermissionDenied', msg, hint);
export const notImplemented = (msg: string, hint?: string) => new ShaleError('NotImplemented', msg, hint);
export const dataLoss = (msg: string, hint?: string) => new ShaleError('DataLoss', msg, hint);

export function isShaleError(e: unknown, code?: ErrorCode): e is ShaleError {
  return e instanceof ShaleError && (code === undefined || e.code === code);
}

/** Node's system errors carry a string code such as ENOENT. */
export function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}
