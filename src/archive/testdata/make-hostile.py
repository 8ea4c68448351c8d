#!/usr/bin/env python3
"""Generate the layer tars under hostile/ and ok/, their manifest.json files and hostile/README.md.

Python 3 standard library only (tarfile, gzip, ...); deterministic: fixed mtimes, owners and
gzip headers, so running it again gives the same bytes (given the same zlib).

    python3 src/archive/testdata/make-hostile.py

The tests (src/archive/hostile.test.ts) apply every tar into <sandbox>/target of a sandbox that
also holds, outside the target:
    <sandbox>/outside/passwd            sentinel file
    <sandbox>/outside/sub/secret        sentinel file
    <sandbox>/outside/link-to-passwd -> passwd
    <sandbox>/escape -> outside
and, inside the target, "lower layer" content:
    <target>/etc/passwd, <target>/old, <target>/lowerlink -> ../outside
So a relative "../outside/..." name or symlink from the target's root reaches the sentinels.
"""
import gzip
import io
import json
import os
import random
import struct
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.join(HERE, 'hostile')
OK = os.path.join(HERE, 'ok')
MTIME = 1700000000  # fixed, for reproducible bytes

CASES = []  # rows of the manifest / README


def ti(name, type=tarfile.REGTYPE, size=0, mode=None, linkname='', devmajor=0, devminor=0, pax=None):
    t = tarfile.TarInfo(name)
    t.type = type
    t.size = size
    t.mode = mode if mode is not None else (0o755 if type == tarfile.DIRTYPE else 0o644)
    t.mtime = MTIME
    t.uid = t.gid = 0
    t.uname = t.gname = ''
    t.linkname = linkname
    t.devmajor, t.devminor = devmajor, devminor
    if pax:
        t.pax_headers = dict(pax)
    return t


def f(name, data=b'', **kw):
    return (ti(name, size=len(data), **kw), data)


def d(name, **kw):
    return (ti(name, tarfile.DIRTYPE, **kw), None)


def sym(name, target):
    return (ti(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None)


def hard(name, target):
    return (ti(name, tarfile.LNKTYPE, linkname=target), None)


def tar_bytes(entries, format=tarfile.PAX_FORMAT, pax_headers=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=format, pax_headers=pax_headers or {}) as tf:
        for t, data in entries:
            tf.addfile(t, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', compresslevel=9, mtime=0, filename='') as g:
        g.write(data)
    return buf.getvalue()


def fix_checksum(block):
    b = bytearray(block)
    b[148:156] = b' ' * 8
    b[148:156] = b'%06o\0 ' % sum(b)
    return bytes(b)


def header(t, format=tarfile.USTAR_FORMAT):
    return t.tobuf(format=format, encoding='utf-8', errors='surrogateescape')


def pad(data):
    return data + b'\0' * ((512 - len(data) % 512) % 512)


END = b'\0' * 1024


def case(file, tries, error=None, checks=None, absent=None, data=None, max_layer_size=None):
    """error: substring of the ShaleError message; None: must apply, outside untouched.
    max_layer_size: read with that limit on the uncompressed size (SHALE_MAX_LAYER_SIZE)."""
    row = {'file': file, 'tries': tries, 'error': error, 'checks': checks or [], 'absent': absent or []}
    if max_layer_size is not None:
        row['maxLayerSize'] = max_layer_size
    CASES.append(row)
    with open(os.path.join(HOSTILE, file), 'wb') as fh:
        fh.write(data)


def hostile():
    # --- names that leave the root -------------------------------------------------------
    case('traversal-dotdot.tar', 'file "../outside/pwned": ".." as first component', 'climbs out with ".."',
         data=tar_bytes([f('../outside/pwned', b'pwned\n')]))
    case('traversal-nested.tar', 'file "a/../../outside/pwned": ".." after a real dir', 'climbs out with ".."',
         data=tar_bytes([d('a'), f('a/../../outside/pwned', b'pwned\n')]))
    case('traversal-dot-dotdot.tar', 'file "./../outside/pwned"', 'climbs out with ".."',
         data=tar_bytes([f('./../outside/pwned', b'pwned\n')]))
    case('traversal-dotdot-dir.tar', 'directory entry "../outside/newdir/"', 'climbs out with ".."',
         data=tar_bytes([d('../outside/newdir', mode=0o777)]))
    case('traversal-gnu-longname.tar', '"../outside/<120 chars>" hidden in a GNU ././@LongLink name', 'climbs out with ".."',
         data=tar_bytes([f('../outside/' + 'l' * 120, b'pwned\n')], format=tarfile.GNU_FORMAT))
    case('traversal-pax-path.tar', 'ustar name "innocent" overridden by pax path=../outside/pwned', 'climbs out with ".."',
         data=tar_bytes([f('innocent', b'pwned\n', pax={'path': '../outside/pwned'})]))
    case('absolute-path.tar', 'file "/tmp/shale-hostile-abs"', 'is an absolute path',
         absent=['/tmp/shale-hostile-abs'], data=tar_bytes([f('/tmp/shale-hostile-abs', b'pwned\n')]))

    # --- hardlinks ---------------------------------------------------------------------------
    case('hardlink-absolute.tar', 'hardlink "h" -> "/etc/passwd"', 'is an absolute path',
         data=tar_bytes([hard('h', '/etc/passwd')]))
    case('hardlink-dotdot.tar', 'hardlink "h" -> "../outside/passwd", then write through "h"', 'climbs out with ".."',
         data=tar_bytes([hard('h', '../outside/passwd'), f('h', b'pwned\n')]))
    case('hardlink-missing.tar', 'hardlink "h" -> "nope" (not in the layer nor below it)', 'does not exist in the layer',
         data=tar_bytes([hard('h', 'nope')]))
    case('hardlink-via-lower-symlink.tar', 'hardlink "h" -> "lowerlink/passwd" through a lower layer\'s symlink to ../outside',
         'goes through the symlink', data=tar_bytes([hard('h', 'lowerlink/passwd')]))

    # --- symlinks, then something through them ---------------------------------------------------
    case('symlink-root-then-file.tar', 'symlink "root" -> "/", then file "root/tmp/shale-hostile-root"', 'goes through the symlink',
         absent=['/tmp/shale-hostile-root'],
         data=tar_bytes([sym('root', '/'), f('root/tmp/shale-hostile-root', b'pwned\n')]))
    case('symlink-up-then-file.tar', 'symlink "up" -> "../../..", then file "up/tmp/shale-hostile-up"', 'goes through the symlink',
         absent=['/tmp/shale-hostile-up'],
         data=tar_bytes([sym('up', '../../..'), f('up/tmp/shale-hostile-up', b'pwned\n')]))
    case('symlink-outside-then-file.tar', 'symlink "esc" -> "../outside", then file "esc/passwd"', 'goes through the symlink',
         data=tar_bytes([sym('esc', '../outside'), f('esc/passwd', b'pwned\n')]))
    case('lower-symlink-then-file.tar', 'file "lowerlink/passwd" through a symlink a lower layer left in the target', 'goes through the symlink',
         data=tar_bytes([f('lowerlink/passwd', b'pwned\n')]))
    case('symlink-then-hardlink.tar', 'symlink "esc" -> "../outside", then hardlink "h" -> "esc/passwd"', 'goes through the symlink',
         data=tar_bytes([sym('esc', '../outside'), hard('h', 'esc/passwd')]))
    case('symlink-then-hardlink-name.tar', 'symlink "esc" -> "../outside", then hardlink named "esc/h"', 'goes through the symlink',
         data=tar_bytes([f('x', b'x\n'), sym('esc', '../outside'), hard('esc/h', 'x')]))
    case('symlink-then-whiteout.tar', 'symlink "link" -> "../outside", then whiteout "link/.wh.passwd"', 'goes through the symlink',
         data=tar_bytes([sym('link', '../outside'), f('link/.wh.passwd')]))
    case('symlink-then-opaque.tar', 'symlink "link" -> "../outside", then opaque marker "link/.wh..wh..opq"', 'goes through the symlink',
         data=tar_bytes([sym('link', '../outside'), f('link/.wh..wh..opq')]))

    # --- whiteouts with odd targets ----------------------------------------------------------
    case('whiteout-dotdot.tar', 'whiteout ".wh..." (deletes "..")', 'climbs out with ".."',
         data=tar_bytes([f('.wh...')]))
    case('whiteout-dotdot-nested.tar', 'whiteout "a/.wh.../.." ', 'climbs out with ".."',
         data=tar_bytes([d('a'), f('a/.wh.../..')]))
    case('whiteout-dot.tar', 'whiteout ".wh.." (deletes "." = the target root itself)', 'is malformed',
         data=tar_bytes([f('.wh..')]))

    # --- devices -------------------------------------------------------------------------------
    case('block-device.tar', 'block device "sda" 8:0 (raw host disk)', 'block device 8:0',
         data=tar_bytes([(ti('sda', tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o666), None)]))
    case('char-device-mem.tar', 'char device "mem" 1:1 (/dev/mem)', 'char device 1:1',
         data=tar_bytes([(ti('mem', tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o666), None)]))

    # --- the same name twice: replaced, never followed ---------------------------------------------
    case('symlink-then-file.tar', 'symlink "f" -> "../outside/passwd", then "f" as a regular file: must replace the link, not write through it',
         checks=[{'path': 'f', 'type': 'file', 'content': 'pwned\n'}],
         data=tar_bytes([sym('f', '../outside/passwd'), f('f', b'pwned\n', mode=0o666)]))
    case('symlink-then-dir.tar', 'symlink "esc" -> "../outside", then directory "esc/" mode 0777: must replace the link',
         checks=[{'path': 'esc', 'type': 'dir'}],
         data=tar_bytes([sym('esc', '../outside'), d('esc', mode=0o777)]))
    case('dir-then-symlink.tar', 'dir "d" (mode 0777), then "d" -> "../outside/passwd": the dir\'s deferred chmod/chown/utimes must not land on the link target',
         checks=[{'path': 'd', 'type': 'symlink'}],
         data=tar_bytes([d('d', mode=0o777), sym('d', '../outside/passwd')]))
    case('opaque-then-symlink.tar', 'dir "d", "d/.wh..wh..opq", then "d" -> "../outside": the deferred opaque must not empty ../outside',
         checks=[{'path': 'd', 'type': 'symlink'}],
         data=tar_bytes([d('d'), f('d/.wh..wh..opq'), sym('d', '../outside')]))
    case('opaque-nested-then-symlink.tar', 'dirs "d/", "d/sub/", "d/sub/.wh..wh..opq", then "d" -> "../outside": opaque must not reach ../outside/sub',
         checks=[{'path': 'd', 'type': 'symlink'}],
         data=tar_bytes([d('d'), d('d/sub'), f('d/sub/.wh..wh..opq'), sym('d', '../outside')]))

    # --- metadata a layer may not set --------------------------------------------------------
    case('pax-global-header.tar', 'global pax header (typeflag g) with path=../outside/passwd and an xattr: ignored as docker does',
         checks=[{'path': 'f', 'type': 'file', 'content': 'ok\n', 'noXattr': 'user.global'}],
         data=tar_bytes([f('f', b'ok\n')], pax_headers={'path': '../outside/passwd', 'SCHILY.xattr.user.global': 'pwned'}))
    case('xattr-overlay.tar', 'dir with SCHILY.xattr.trusted.overlay.opaque/redirect: overlayfs metadata is not taken from a layer',
         checks=[{'path': 'd', 'type': 'dir', 'noXattr': 'trusted.overlay.opaque'}, {'path': 'd', 'noXattr': 'trusted.overlay.redirect'}],
         data=tar_bytes([d('d', pax={'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/etc'})]))

    # --- broken or lying headers -----------------------------------------------------------------
    big = ti('big', size=0o77777777777)  # 8 GiB claimed
    case('huge-size-truncated.tar', 'file header claims 8 GiB, 1 KiB of data follows, then EOF', 'truncated',
         data=header(big) + b'A' * 1024)
    base256 = bytearray(header(ti('huge', size=0)))
    base256[124:136] = b'\x80' + b'\xff' * 11  # GNU base-256: 2^88-1 bytes
    case('huge-size-base256.tar', 'size field in GNU base-256 encoding: 2^88-1 bytes', 'impossible size',
         data=fix_checksum(base256) + END)
    negative = bytearray(header(ti('negative', size=0)))
    negative[124:136] = b'\xff' * 12  # GNU base-256, two's complement: -1
    case('negative-size-base256.tar', 'size field in GNU base-256 encoding with the sign bit set: -1 bytes', 'negative size',
         data=fix_checksum(negative) + END)
    case('pax-negative-size.tar', 'pax size=-1 overriding the header size', 'not a valid number',
         data=tar_bytes([f('neg', b'', pax={'size': '-1'})]))
    bad = bytearray(header(ti('badsum', size=6)))
    bad[148:156] = b'%06o\0 ' % ((sum(bad[:148]) + sum(bad[156:]) + 8 * 32 + 1) & 0o777777)
    case('bad-checksum.tar', 'header checksum off by one', 'checksum mismatch',
         data=bytes(bad) + pad(b'pwned\n') + END)
    nonoct = bytearray(header(ti('nonoctal', size=6)))
    nonoct[124:136] = b'0000000012x\0'
    case('non-octal-size.tar', 'size field "0000000012x" (valid checksum)', 'malformed size field',
         data=fix_checksum(nonoct) + pad(b'pwned\n') + END)
    paxbody = b'99999999999 path=x\n'
    paxh = ti('PaxHeaders/x', tarfile.XHDTYPE, size=len(paxbody))
    case('pax-absurd-record-length.tar', 'pax record claiming a length of 99999999999 bytes', 'malformed pax header record length',
         data=header(paxh) + pad(paxbody) + header(ti('x', size=0)) + END)
    paxh2 = ti('PaxHeaders/y', tarfile.XHDTYPE, size=0o17777777777)  # 2 GiB pax header
    case('pax-huge-header.tar', 'pax extended header claiming 2 GiB', 'too large',
         data=header(paxh2) + b'17 path=aaaaaaaa\n')
    case('gnu-sparse.tar', 'GNU sparse entry (typeflag S)', 'unsupported type flag "S"',
         data=tar_bytes([(ti('sparse', tarfile.GNUTYPE_SPARSE, size=512), b'\0' * 512)], format=tarfile.GNU_FORMAT))
    case('gnu-sparse-pax.tar', 'GNU sparse 1.0 in pax form (GNU.sparse.* keys): map + data would be taken as the file', 'GNU sparse',
         data=tar_bytes([f('GNUSparseFile.0/file', b'1\n0\n4\n'.ljust(512, b'\0') + b'data',
                           pax={'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'file', 'GNU.sparse.realsize': '4096'})]))
    seven_gib = 7 << 30
    sparse7 = bytearray(header(ti('sparse7g', size=512), format=tarfile.GNU_FORMAT))
    sparse7[156:157] = b'S'
    sparse7[386:398] = b'%011o\0' % (seven_gib - 512)  # sparse map: 512 bytes of data at 7 GiB - 512
    sparse7[398:410] = b'%011o\0' % 512
    sparse7[483:495] = b'%011o\0' % seven_gib  # realsize
    case('gnu-sparse-7g.tar', 'old GNU sparse entry (typeflag S) whose map and real size claim 7 GiB', 'unsupported type flag "S"',
         data=fix_checksum(sparse7) + pad(b'x' * 512) + END)
    case('gnu-sparse-pax-7g.tar', 'GNU sparse 1.0 in pax form whose map claims a 7 GiB file', 'GNU sparse',
         data=tar_bytes([f('GNUSparseFile.0/big', (b'1\n%d\n512\n' % (seven_gib - 512)).ljust(512, b'\0') + b'x' * 512,
                           pax={'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'big', 'GNU.sparse.realsize': str(seven_gib)})]))
    case('not-a-tar.tar', '1 KiB of text', 'checksum',
         data=(b'this is not a tar archive\n' * 40)[:1024])
    case('empty.tar', 'zero bytes', 'empty', data=b'')

    # --- compression ---------------------------------------------------------------------------
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode='wb', compresslevel=9, mtime=0, filename='') as g:
        total = 200 * 1000 * 1000
        g.write(header(ti('zeros', size=total)))
        chunk = b'\0' * (1 << 20)
        left = total
        while left:
            n = min(left, len(chunk))
            g.write(chunk[:n])
            left -= n
        assert total % 512 == 0
        g.write(END)
    assert len(bomb.getvalue()) < 300 * 1024, len(bomb.getvalue())
    # a ratio test would also refuse genuine layers of zeros (docker takes them): the limit is on size
    case('gzip-bomb.tar.gz', 'gzip of a tar holding 200 MB of zeros (~1000:1), read with a 64 MiB limit on uncompressed size',
         'larger than the limit', data=bomb.getvalue(), max_layer_size=64 << 20)
    rnd = random.Random(1)
    payload = tar_bytes([f('noise', rnd.randbytes(64 * 1024))])
    z = gz(payload)
    case('truncated.tar.gz', 'gzip stream cut in half', 'compressed layer is truncated', data=z[: len(z) // 2])
    # a digest that lies is caught by the content store (src/content), before a layer gets here
    CASES.append({'file': '(none)', 'tries': 'blob whose sha256 is not the digest it was stored under', 'error': None, 'note': 'covered by the content store (src/content), not by archive', 'skip': True})


def zstd_raw_frame(data):
    """A valid zstd frame (RFC 8878) from raw and RLE blocks: no compressor needed, stdlib only."""
    out = bytearray(struct.pack('<I', 0xFD2FB528))
    out.append(0xA0)  # Frame_Header_Descriptor: FCS 4 bytes, Single_Segment, no checksum, no dict
    out += struct.pack('<I', len(data))
    blocks = []
    i = 0
    while i < len(data):
        # a run of one byte >= 512 long becomes an RLE block, the rest raw blocks of <= 128 KiB
        j = i
        while j < len(data) and data[j] == data[i] and j - i < 128 * 1024:
            j += 1
        if j - i >= 512:
            blocks.append((1, j - i, data[i:i + 1]))
            i = j
            continue
        k = i + 1
        while k < len(data) and k - i < 128 * 1024:
            if data[k:k + 512] == bytes([data[k]]) * 512:
                break
            k += 1
        blocks.append((0, k - i, data[i:k]))
        i = k
    for n, (btype, size, content) in enumerate(blocks):
        last = 1 if n == len(blocks) - 1 else 0
        hdr = last | (btype << 1) | (size << 3)
        out += struct.pack('<I', hdr)[:3] + content
    return bytes(out)


def ok():
    layer = tar_bytes([
        d('bin'),
        f('bin/busybox', b'#!/bin/sh\necho busybox\n', mode=0o755),
        hard('bin/ls', 'bin/busybox'),
        sym('bin/sh', 'busybox'),
        d('etc'),
        f('etc/hostname', b'shale\n'),
        f('.wh.old'),
    ])
    files = {'valid.tar': (layer, 'none'), 'valid.tar.gz': (gz(layer), 'gzip'), 'valid.tar.zst': (zstd_raw_frame(layer), 'zstd')}
    manifest = []
    for name, (data, comp) in files.items():
        with open(os.path.join(OK, name), 'wb') as fh:
            fh.write(data)
        manifest.append({'file': name, 'compression': comp})
    with open(os.path.join(OK, 'manifest.json'), 'w') as fh:
        json.dump(manifest, fh, indent=2)
        fh.write('\n')


def readme():
    lines = [
        '# Hostile layer tars',
        '',
        'Generated by `../make-hostile.py` (do not edit by hand; rerun it). Each file is applied by',
        '`src/archive/hostile.test.ts` with `openUncompressed` + `applyLayer`, in both whiteout modes,',
        'into `<sandbox>/target`; the sandbox also holds sentinels outside the target',
        '(`outside/passwd`, `outside/sub/secret`, `outside/link-to-passwd -> passwd`, `escape -> outside`)',
        'and the target holds lower-layer content (`etc/passwd`, `old`, `lowerlink -> ../outside`).',
        'Every case must leave everything outside the target byte-for-byte and stat-for-stat unchanged.',
        '',
        'An expected error is a substring of the `ShaleError` message; "(applies)" means the layer is',
        'legal and must apply, but without touching anything outside the target. The same data is in',
        '`manifest.json` (the test reads that). `../ok/` holds valid layers (plain, gzip, zstd).',
        'A case with `maxLayerSize` in manifest.json is read with that limit on the uncompressed size',
        '(what `SHALE_MAX_LAYER_SIZE` sets; 64 GiB by default). `src/images/load-malformed.test.ts` also',
        'loads the tars that break the tar format itself, each as the layer of a docker-archive.',
        '',
        '| file | what it tries | expected error substring |',
        '| --- | --- | --- |',
    ]
    for c in CASES:
        if c.get('skip'):
            lines.append(f"| {c['file']} | {c['tries']} | {c['note']} |")
            continue
        err = f"`{c['error']}`" if c['error'] else '(applies; ' + ', '.join(
            f"{k['path']} is {k['type']}" for k in c['checks'] if 'type' in k) + ')'
        tries = c['tries'].replace('|', r'\|')
        err = err.replace('|', r'\|')
        lines.append(f"| {c['file']} | {tries} | {err} |")
    with open(os.path.join(HOSTILE, 'README.md'), 'w') as fh:
        fh.write('\n'.join(lines) + '\n')


def main():
    os.makedirs(HOSTILE, exist_ok=True)
    os.makedirs(OK, exist_ok=True)
    hostile()
    ok()
    with open(os.path.join(HOSTILE, 'manifest.json'), 'w') as fh:
        json.dump([c for c in CASES if not c.get('skip')], fh, indent=2)
        fh.write('\n')
    readme()


if __name__ == '__main__':
    main()
