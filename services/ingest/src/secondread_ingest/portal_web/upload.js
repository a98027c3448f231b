// The upload page: link -> files -> what the headers say -> the case form -> a resumable upload
// (tus-js-client, which remembers the upload in localStorage so a closed tab or a dropped
// connection goes on where it stopped) -> the status page.

import { fingerprint, filesFromDrop, filesFromInput, readStudy } from "./study.js";
import { writeZip } from "./zip.js";

const $ = (id) => document.getElementById(id);
const state = { link: null, linkInfo: null, study: null, zip: null, fp: null, upload: null };
const FIELDS = {
  clinical_question: ["clinical_question", "Clinical question"],
  original_report: ["original_report", "Report text"],
  original_report_pdf: ["original_report_pdf", "Report PDF"],
  urgency: ["urgency-error", "Urgency"],
  referring_physician: ["physician_name", "Physician"],
  "referring_physician.name": ["physician_name", "Physician's name"],
  "referring_physician.email": ["physician_email", "Physician's email"],
  patient_email: ["patient_email", "Patient's email"],
  patient_delivery_consent: ["patient_delivery_consent", "Report to the patient"],
  consent: ["consent", "Consent"],
};

function show(id, on = true) {
  $(id).hidden = !on;
}

function notice(text, kind = "info") {
  const n = $("notice");
  n.className = text ? `notice ${kind}` : "";
  n.textContent = text;
}

function mb(bytes) {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function duration(seconds) {
  if (!isFinite(seconds)) return "…";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function date(text) {
  return /^\d{8}$/.test(text) ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}` : text;
}

function pendingKey() {
  return `secondread.portal.${state.linkInfo.linkId}`;
}

function linkId(token) {
  try {
    const body = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(body)).l;
  } catch {
    return token.slice(0, 24);
  }
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  const body = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, body };
}

// ------------------------------------------------------------------ 0. the link

async function openLink() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("link");
  if (!token) {
    show("no-link");
    return;
  }
  state.link = token;
  const { ok, body } = await api("/portal/api/link", { headers: { "X-Portal-Link": token } });
  if (!ok) {
    notice(body.error ? body.error.message : "This upload link cannot be used.", "error");
    return;
  }
  state.linkInfo = { ...body, linkId: linkId(token) };
  const pending = JSON.parse(localStorage.getItem(pendingKey()) || "null");
  if (!body.usable && !pending) {
    notice(`${body.reason}.`, "error");
    return;
  }
  const until = new Date(body.expires_at).toLocaleString();
  $("link-info").textContent = `Upload link of hospital “${body.hospital}”, valid until ${until}.`;
  if (pending) {
    notice(
      pending.done
        ? "This link's case was sent from this browser."
        : "An upload from this browser was interrupted. Choose the same files again and it " +
            "goes on where it stopped.",
      "info",
    );
    const a = document.createElement("a");
    a.href = pending.status_url;
    a.textContent = " Open its status page.";
    $("notice").append(a);
    if (!body.usable) return;
    if (pending.done) localStorage.removeItem(pendingKey()); // the link may open another case
  }
  show("step-files");
}

// ------------------------------------------------------------------ 1. files

async function chosen(files) {
  if (!files.length) return;
  show("reading");
  show("step-summary", false);
  show("step-form", false);
  notice("");
  try {
    state.study = await readStudy(files, (done, total) => {
      $("read-progress").max = total || 1;
      $("read-progress").value = done;
      $("read-text").textContent = `${done} of ${total} files`;
    });
  } catch (exc) {
    notice(`The files could not be read: ${exc.message}`, "error");
    return;
  } finally {
    show("reading", false);
  }
  state.zip = writeZip(state.study.members);
  state.fp = await fingerprint(state.study.members);
  summarise(state.study);
}

function cell(row, text, header = false) {
  const c = document.createElement(header ? "th" : "td");
  c.textContent = text;
  if (header) c.scope = "row";
  row.append(c);
}

function summarise(study) {
  const box = $("summary");
  box.replaceChildren();
  const skipped = $("skipped");
  skipped.replaceChildren();
  if (!study.instances) {
    const p = document.createElement("p");
    p.className = "notice error";
    p.textContent = "No DICOM images were found in what you chose.";
    box.append(p);
  }
  for (const s of study.studies) {
    const table = document.createElement("table");
    const caption = document.createElement("caption");
    caption.textContent = s.studyDescription ? `Study: ${s.studyDescription}` : "Study";
    table.append(caption);
    const body = document.createElement("tbody");
    for (const [k, v] of [
      ["Patient", s.patientName || "(no name)"],
      ["Patient ID", s.patientId || "(none)"],
      ["Birth date", date(s.birthDate) || "(none)"],
      ["Modality", s.modality || "(none)"],
      ["Study date", date(s.studyDate) || "(none)"],
      ["Series", String(s.seriesCount)],
      ["Images (instances)", String(s.instances)],
    ]) {
      const row = document.createElement("tr");
      cell(row, k, true);
      cell(row, v);
      body.append(row);
    }
    table.append(body);
    box.append(table);
  }
  const total = document.createElement("p");
  total.id = "summary-total";
  total.textContent =
    `${study.instances} images in ${study.series} series of ${study.studies.length} ` +
    `${study.studies.length === 1 ? "study" : "studies"}, ${mb(state.zip.size)} to send.`;
  box.append(total);
  if (study.patients > 1) {
    const warn = document.createElement("p");
    warn.className = "notice error";
    warn.textContent =
      "These images belong to more than one patient: send one patient's images per case.";
    box.append(warn);
  }
  if (study.skipped.length) {
    const h = document.createElement("h3");
    h.textContent = `${study.skipped.length} file(s) will not be sent`;
    const ul = document.createElement("ul");
    ul.id = "skipped-list";
    for (const s of study.skipped) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = s.path;
      li.append(code, `: ${s.why}`);
      ul.append(li);
    }
    skipped.append(h, ul);
  }
  $("confirm").disabled = !study.instances || study.patients > 1;
  show("step-summary");
  $("summary-title").focus();
}

async function confirmed() {
  const pending = JSON.parse(localStorage.getItem(pendingKey()) || "null");
  if (pending && !pending.done) {
    if (pending.fingerprint === state.fp && pending.upload_length === state.zip.size) {
      show("step-files", false);
      show("step-summary", false);
      startUpload(pending);
      return;
    }
    notice(
      "These are not the files of the interrupted upload. Choose the same files as before.",
      "error",
    );
    return;
  }
  show("step-files", false);
  show("step-summary", false);
  show("step-form");
  $("form-title").focus();
}

// ------------------------------------------------------------------ 2. the form

function clearErrors() {
  $("errors").hidden = true;
  $("errors").replaceChildren();
  document.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
  document.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

function showErrors(fields, message) {
  const box = $("errors");
  box.replaceChildren();
  const h = document.createElement("h3");
  h.textContent = "Please correct the following";
  const ul = document.createElement("ul");
  const entries = Object.entries(fields || {});
  if (!entries.length) entries.push(["form", message || "The case could not be sent."]);
  for (const [name, text] of entries) {
    const [id, label] = FIELDS[name] || [null, name];
    const li = document.createElement("li");
    const where = id ? $(id) : null;
    if (where && where.tagName !== "P") {
      const a = document.createElement("a");
      a.href = `#${id}`;
      a.textContent = `${label}: ${text}`;
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        where.focus();
      });
      li.append(a);
      where.setAttribute("aria-invalid", "true");
      const err = $(`${id}-error`);
      if (err) err.textContent = `${label}: ${text}`;
    } else {
      li.textContent = `${label}: ${text}`;
      if (where) where.textContent = `${label}: ${text}`;
    }
    ul.append(li);
  }
  box.append(h, ul);
  box.hidden = false;
  box.focus();
}

function intake() {
  const value = (id) => $(id).value.trim();
  const out = {
    clinical_question: value("clinical_question"),
    original_report: value("original_report"),
    urgency: document.querySelector("input[name=urgency]:checked").value,
    referring_physician: { name: value("physician_name"), email: value("physician_email") },
    consent: $("consent").checked,
    patient_delivery_consent: $("patient_delivery_consent").checked,
  };
  if (value("patient_email")) out.patient_email = value("patient_email");
  return out;
}

async function submitForm(ev) {
  ev.preventDefault();
  clearErrors();
  $("send").disabled = true;
  try {
    const study = state.study;
    const form = new FormData();
    form.append(
      "form",
      JSON.stringify({
        intake: intake(),
        summary: {
          instances: study.instances,
          series: study.series,
          studies: study.studies.length,
          not_dicom: study.skipped.length,
          modalities: study.modalities,
        },
        upload_length: state.zip.size,
      }),
    );
    const pdf = $("original_report_pdf").files[0];
    if (pdf) form.append("report_pdf", pdf);
    const { ok, status, body } = await api("/portal/api/submissions", {
      method: "POST",
      headers: { "X-Portal-Link": state.link },
      body: form,
    });
    if (!ok) {
      const err = body.error || {};
      if (status === 422 && err.code === "bad_intake") showErrors(err.fields, err.message);
      else showErrors({}, err.message || `The case could not be sent (HTTP ${status}).`);
      return;
    }
    const pending = {
      status_token: body.status_token,
      status_url: body.status_url,
      fingerprint: state.fp,
      upload_length: state.zip.size,
      done: false,
    };
    localStorage.setItem(pendingKey(), JSON.stringify(pending));
    show("step-form", false);
    startUpload(pending);
  } finally {
    $("send").disabled = false;
  }
}

// ------------------------------------------------------------------ 3. the upload

function chunkSize() {
  const n = Number(localStorage.getItem("secondread.portal.chunkBytes"));
  return n > 0 ? n : 8 * 1024 * 1024;
}

function startUpload(pending) {
  show("step-upload");
  $("upload-title").focus();
  $("status-link").href = pending.status_url;
  $("status-link").hidden = false;
  const bar = $("upload-progress");
  bar.max = state.zip.size;
  const samples = [];
  const upload = new tus.Upload(state.zip, {
    endpoint: "/portal/tus/",
    chunkSize: chunkSize(),
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
    headers: { "X-Portal-Status": pending.status_token },
    // No file name in the metadata: it may name the patient.
    metadata: { filename: "study.zip", filetype: "application/zip" },
    fingerprint: async () => `secondread-portal-${pending.fingerprint}`,
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      const now = performance.now();
      if (samples.length && sent < samples[samples.length - 1][1]) samples.length = 0; // resumed
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0][0] > 8000) samples.shift();
      const [t0, b0] = samples[0];
      const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
      bar.value = sent;
      if (sent > (samples.length > 1 ? samples[samples.length - 2][1] : 0)) {
        $("upload-retry").textContent = "";
      }
      const left = speed > 0 ? duration((total - sent) / speed) : "…";
      $("upload-text").textContent =
        `${mb(sent)} of ${mb(total)} (${Math.floor((100 * sent) / total)} %)` +
        ` · ${mb(speed)}/s · about ${left} left`;
    },
    onShouldRetry(err, attempt) {
      $("upload-retry").textContent =
        `The connection was lost; trying again (attempt ${attempt + 1}), from where it stopped…`;
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      return status === 0 || status === 409 || status === 423 || status >= 500;
    },
    onError(err) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      let message = "The upload stopped.";
      try {
        message = JSON.parse(err.originalResponse.getBody()).error.message;
      } catch {
        /* not an answer of ours */
      }
      notice(`${message} Press “Resume” to go on${status ? "" : " when you are online again"}.`,
        "error");
      $("pause").textContent = "Resume";
    },
    onSuccess() {
      bar.value = state.zip.size;
      localStorage.setItem(pendingKey(), JSON.stringify({ ...pending, done: true }));
      $("upload-text").textContent = `All ${mb(state.zip.size)} have arrived.`;
      notice("Every byte has arrived. The case opens now; its status page follows it.", "ok");
      $("pause").hidden = true;
      setTimeout(() => location.assign(pending.status_url), 1500);
    },
  });
  state.upload = upload;
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  });
  $("pause").onclick = () => {
    if ($("pause").textContent === "Pause") {
      upload.abort();
      $("pause").textContent = "Resume";
      $("upload-text").textContent = "Paused.";
    } else {
      notice("");
      $("pause").textContent = "Pause";
      upload.start();
    }
  };
}

// ------------------------------------------------------------------ wiring

function wire() {
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    chosen(await filesFromDrop(ev.dataTransfer));
  });
  for (const id of ["pick-folder", "pick-files"]) {
    $(id).addEventListener("change", (ev) => chosen(filesFromInput(ev.target)));
  }
  $("again").addEventListener("click", () => {
    show("step-summary", false);
    show("step-files");
    $("pick-folder").value = "";
    $("pick-files").value = "";
    $("pick-folder").focus();
  });
  $("confirm").addEventListener("click", confirmed);
  $("case-form").addEventListener("submit", submitForm);
  window.addEventListener("hashchange", () => location.reload());
}

wire();
openLink();
