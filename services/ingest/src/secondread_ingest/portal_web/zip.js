// The portal's zip handling, in the browser, with no library: read a chosen zip's entries
// (APPNOTE.TXT 4.3: end of central directory, central directory, local headers; deflate by the
// browser's DecompressionStream), and write one zip of the whole study as a Blob that only
// references the chosen files (method 0 for files, the original method for zip members), so
// that nothing is copied into memory and the same files always give the same bytes.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export class ZipError extends Error {}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

// Every entry of the zip `file`: {name, method, crc, compressedSize, size, data (a Blob slice of
// the stored bytes), read() (the uncompressed bytes)}.
export async function readZipEntries(file) {
  const tailLength = Math.min(file.size, 22 + 0xffff);
  const tail = new DataView(await file.slice(file.size - tailLength).arrayBuffer());
  let eocd = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError(`${file.name} is not a readable zip archive`);
  const count = tail.getUint16(eocd + 10, true);
  const cdSize = tail.getUint32(eocd + 12, true);
  const cdOffset = tail.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff) {
    throw new ZipError(`${file.name} is a ZIP64 archive: unzip it and choose the folder instead`);
  }
  const cd = new DataView(await file.slice(cdOffset, cdOffset + cdSize).arrayBuffer());
  const entries = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (cd.getUint32(p, true) !== 0x02014b50) throw new ZipError(`${file.name} is damaged`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    const crc = cd.getUint32(p + 16, true);
    const compressedSize = cd.getUint32(p + 20, true);
    const size = cd.getUint32(p + 24, true);
    const nameLength = cd.getUint16(p + 28, true);
    const extraLength = cd.getUint16(p + 30, true);
    const commentLength = cd.getUint16(p + 32, true);
    const localOffset = cd.getUint32(p + 42, true);
    const name = utf8d.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nameLength));
    p += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith("/")) continue; // a folder
    if (flags & 1) throw new ZipError(`${file.name}: ${name} is encrypted`);
    if (method !== 0 && method !== 8) {
      throw new ZipError(`${file.name}: ${name} uses a compression this page cannot read`);
    }
    const local = new DataView(await file.slice(localOffset, localOffset + 30).arrayBuffer());
    if (local.getUint32(0, true) !== 0x04034b50) throw new ZipError(`${file.name} is damaged`);
    const start = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    const data = file.slice(start, start + compressedSize);
    entries.push({
      name,
      method,
      crc,
      compressedSize,
      size,
      data,
      async read() {
        if (method === 0) return new Uint8Array(await data.arrayBuffer());
        const stream = data.stream().pipeThrough(new DecompressionStream("deflate-raw"));
        return new Uint8Array(await new Response(stream).arrayBuffer());
      },
    });
  }
  return entries;
}

// A safe member name: forward slashes, no absolute path, no "..", no drive letter.
export function memberName(path) {
  const parts = String(path)
    .replace(/\\/g, "/")
    .split("/")
    .filter((s) => s && s !== "." && s !== "..")
    .map((s) => s.replace(/:/g, "_"));
  return parts.join("/") || "file";
}

function dosDateTime(ms) {
  const d = new Date(ms || Date.UTC(1980, 0, 1));
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

// One zip (a Blob) of `members`: [{name, data: Blob, method, crc, compressedSize, size, mtime}].
export function writeZip(members) {
  if (members.length > 0xfffe) throw new ZipError("too many files for one upload");
  const parts = [];
  const central = [];
  let offset = 0;
  for (const m of members) {
    const name = utf8.encode(m.name);
    const { time, date } = dosDateTime(m.mtime);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(6, 0x0800, true); // names are UTF-8
    local.setUint16(8, m.method, true);
    local.setUint16(10, time, true);
    local.setUint16(12, date, true);
    local.setUint32(14, m.crc, true);
    local.setUint32(18, m.compressedSize, true);
    local.setUint32(22, m.size, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    parts.push(local.buffer, name, m.data);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true);
    cd.setUint16(4, 20, true);
    cd.setUint16(6, 20, true);
    cd.setUint16(8, 0x0800, true);
    cd.setUint16(10, m.method, true);
    cd.setUint16(12, time, true);
    cd.setUint16(14, date, true);
    cd.setUint32(16, m.crc, true);
    cd.setUint32(20, m.compressedSize, true);
    cd.setUint32(24, m.size, true);
    cd.setUint16(28, name.length, true);
    cd.setUint32(42, offset, true);
    central.push(cd.buffer, name);
    offset += 30 + name.length + m.compressedSize;
    if (offset > 0xfffffff0) throw new ZipError("the study is too large for one upload (4 GB)");
  }
  const cdSize = central.reduce((n, b) => n + b.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, members.length, true);
  end.setUint16(10, members.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end.buffer], { type: "application/zip" });
}
