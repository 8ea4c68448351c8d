// OCI whiteouts in layer tars and their overlayfs forms on disk.
//   tar:      dir/.wh.NAME           (NAME deleted)      dir/.wh..wh..opq   (dir is opaque)
//   overlay:  dir/NAME as char 0/0                       dir with trusted.overlay.opaque=y
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE = '.wh..wh..opq';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export type WhiteoutKind = { kind: 'opaque' } | { kind: 'whiteout'; target: string } | { kind: 'meta' } | undefined;

export function classify(base: string): WhiteoutKind {
  if (base === OPAQUE) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  if (base.startsWith(WHITEOUT_PREFIX)) return { kind: 'whiteout', target: base.slice(WHITEOUT_PREFIX.length) };
  return undefined;
}

export function isOverlayWhiteout(st: { isCharacterDevice(): boolean; rdev: number }): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}
