// What the user chose, read in the browser before anything is sent: every file (or zip member)
// is checked for the DICOM Part 10 marker (PS3.10 7.1: a 128-byte preamble, then "DICM"), its
// header is read with dcmjs up to the pixel data, and its CRC-32 is computed for the upload's zip.

import { crc32, memberName, readZipEntries, ZipError } from "./zip.js";

const PIXEL_DATA = "7FE00010";

function isZip(file) {
  return /\.zip$/i.test(file.name) || file.type === "application/zip";
}

function isDicomBytes(bytes) {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 && // D
    bytes[129] === 0x49 && // I
    bytes[130] === 0x43 && // C
    bytes[131] === 0x4d //    M
  );
}

function first(value) {
  return Array.isArray(value) ? value[0] : value;
}

function personName(value) {
  const v = first(value);
  if (!v) return "";
  const text = typeof v === "string" ? v : v.Alphabetic || "";
  return text.replace(/\^+/g, " ").trim();
}

function header(bytes) {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const file = dcmjs.data.DicomMessage.readFile(buffer, {
    untilTag: PIXEL_DATA,
    includeUntilTagValue: false,
    ignoreErrors: true,
  });
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(file.dict);
  return {
    patientName: personName(ds.PatientName),
    patientId: String(first(ds.PatientID) || ""),
    birthDate: String(first(ds.PatientBirthDate) || ""),
    modality: String(first(ds.Modality) || ""),
    studyDate: String(first(ds.StudyDate) || ""),
    studyDescription: String(first(ds.StudyDescription) || ""),
    studyUid: String(first(ds.StudyInstanceUID) || ""),
    seriesUid: String(first(ds.SeriesInstanceUID) || ""),
    sopUid: String(first(ds.SOPInstanceUID) || ""),
  };
}

// Files from an <input type=file> or a drop: [{file, path}] with their paths in the folder.
export async function filesFromDrop(dataTransfer) {
  const items = [...(dataTransfer.items || [])];
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!entries.some(Boolean)) return [...dataTransfer.files].map((f) => ({ file: f, path: f.name }));
  const out = [];
  async function walk(entry) {
    if (!entry) return;
    if (entry.isFile) {
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      out.push({ file, path: entry.fullPath.replace(/^\//, "") });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  }
  for (const entry of entries) await walk(entry);
  return out;
}

export function filesFromInput(input) {
  return [...input.files].map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
}

// Read every chosen file; `progress(done, total)` as it goes. Returns
// {members (for writeZip), studies, skipped: [{path, why}], instances, series, modalities}.
export async function readStudy(chosen, progress = () => {}) {
  const candidates = [];
  const skipped = [];
  for (const { file, path } of chosen) {
    if (isZip(file)) {
      let entries;
      try {
        entries = await readZipEntries(file);
      } catch (exc) {
        if (exc instanceof ZipError) skipped.push({ path, why: exc.message });
        else throw exc;
        continue;
      }
      for (const e of entries) candidates.push({ path: `${path}/${e.name}`, zipEntry: e, file });
    } else {
      candidates.push({ path, file });
    }
  }
  candidates.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const members = [];
  const studies = new Map();
  const sops = new Set();
  let done = 0;
  for (const c of candidates) {
    progress(done++, candidates.length);
    const base = c.path.split("/").pop();
    if (base.toUpperCase() === "DICOMDIR") {
      skipped.push({ path: c.path, why: "the CD's index (DICOMDIR): not needed, not sent" });
      continue;
    }
    const bytes = c.zipEntry
      ? await c.zipEntry.read()
      : new Uint8Array(await c.file.arrayBuffer());
    if (!isDicomBytes(bytes)) {
      skipped.push({ path: c.path, why: "not a DICOM file: not sent" });
      continue;
    }
    let h;
    try {
      h = header(bytes);
    } catch (exc) {
      skipped.push({ path: c.path, why: "a damaged DICOM file: not sent" });
      continue;
    }
    if (!h.studyUid || !h.seriesUid || !h.sopUid) {
      skipped.push({ path: c.path, why: "a DICOM file without its identifiers: not sent" });
      continue;
    }
    if (sops.has(h.sopUid)) {
      skipped.push({ path: c.path, why: "the same image twice: sent once" });
      continue;
    }
    sops.add(h.sopUid);
    const key = h.studyUid;
    if (!studies.has(key)) {
      studies.set(key, { ...h, series: new Map(), instances: 0 });
    }
    const study = studies.get(key);
    study.instances += 1;
    study.series.set(h.seriesUid, (study.series.get(h.seriesUid) || 0) + 1);
    if (h.modality && !study.modality.split(", ").includes(h.modality)) {
      study.modality = study.modality ? `${study.modality}, ${h.modality}` : h.modality;
    }
    const name = memberName(c.path);
    if (c.zipEntry) {
      const e = c.zipEntry;
      members.push({
        name,
        data: e.data,
        method: e.method,
        crc: e.crc,
        compressedSize: e.compressedSize,
        size: e.size,
        mtime: c.file.lastModified,
      });
    } else {
      members.push({
        name,
        data: c.file,
        method: 0,
        crc: crc32(bytes),
        compressedSize: c.file.size,
        size: c.file.size,
        mtime: c.file.lastModified,
      });
    }
  }
  progress(candidates.length, candidates.length);
  const list = [...studies.values()].map((s) => ({
    ...s,
    seriesCount: s.series.size,
  }));
  const modalities = new Set();
  list.forEach((s) => s.modality.split(", ").filter(Boolean).forEach((m) => modalities.add(m)));
  return {
    members,
    studies: list,
    skipped,
    instances: members.length,
    series: list.reduce((n, s) => n + s.seriesCount, 0),
    modalities: [...modalities],
    patients: new Set(list.map((s) => `${s.patientId}|${s.patientName}`)).size,
  };
}

// A stable fingerprint of the chosen files (names, sizes, dates), to recognise them again
// after the tab was closed.
export async function fingerprint(members) {
  const text = members.map((m) => `${m.name}\t${m.size}\t${m.crc}\t${m.mtime}`).join("\n");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
