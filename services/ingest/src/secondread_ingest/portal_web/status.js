// The status page: its capability is in the address's fragment (never sent in the URL), and
// goes to the server as the X-Portal-Status header.

const $ = (id) => document.getElementById(id);
const STEPS = [
  ["uploading", "Images being sent"],
  ["checking", "Images arrived, being checked"],
  ["received", "Received"],
  ["in_review", "In review by a radiologist"],
  ["delivered", "Delivered"],
];
const DETAIL = {
  uploading: "Not every image has arrived yet: open your upload link again to go on.",
  checking: "Every byte has arrived; the images are being checked and the case opened.",
  received: "The case is open and is being prepared for a radiologist.",
  in_review: "A subspecialist radiologist is reading the images.",
  delivered: "The second opinion was delivered to the physician (and to you, if you asked).",
};

function mb(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function render(view) {
  const steps = $("steps");
  steps.replaceChildren();
  if (view.step === "refused") {
    $("notice").className = "notice error";
    $("notice").textContent =
      `The images could not be accepted: ${view.error.message}. ` +
      "Nothing was kept. Ask the hospital for a new link and send the study again.";
  }
  const at = STEPS.findIndex(([key]) => key === view.step);
  STEPS.forEach(([key, label], i) => {
    const li = document.createElement("li");
    li.textContent = label;
    li.dataset.step = key;
    if (at >= 0 && i < at) li.className = "done";
    if (i === at) li.setAttribute("aria-current", "step");
    if (key === "uploading" && view.step === "uploading") {
      li.textContent += ` (${mb(view.upload.received_bytes)} of ${mb(view.upload.total_bytes)})`;
    }
    steps.append(li);
  });
  let detail = DETAIL[view.step] || "";
  if (view.held) detail += " It is held for a check by our staff, who will follow it up.";
  $("step-detail").textContent = detail;
  $("progress").hidden = false;

  const list = $("entered-list");
  list.replaceChildren();
  const files = view.files || {};
  const rows = [
    ["Sent", new Date(view.submitted_at).toLocaleString()],
    ["Clinical question", view.clinical_question],
    ["Urgency", view.urgency === "urgent" ? "Urgent" : "Routine"],
    ["Physician", `${view.physician.name} <${view.physician.email}>`],
    [
      "Report to the patient",
      view.patient_delivery && view.patient_email ? `yes, to ${view.patient_email}` : "no",
    ],
    [
      "Images",
      `${files.instances} in ${files.series} series` +
        (files.modalities && files.modalities.length ? ` (${files.modalities.join(", ")})` : ""),
    ],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    list.append(dt, dd);
  }
  $("entered").hidden = false;
  document.body.dataset.step = view.step;
}

async function poll(token) {
  let resp;
  try {
    resp = await fetch("/portal/api/status", { headers: { "X-Portal-Status": token } });
  } catch {
    $("step-detail").textContent = "Offline: checking again shortly.";
    return true;
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    $("notice").className = "notice error";
    $("notice").textContent = body.error ? body.error.message : "This status link is not known.";
    return false;
  }
  render(body);
  return body.step !== "delivered" && body.step !== "refused";
}

async function main() {
  const token = new URLSearchParams(location.hash.slice(1)).get("status");
  if (!token) {
    $("notice").className = "notice error";
    $("notice").textContent =
      "This address holds no case: open the status link you were given after the upload.";
    return;
  }
  while (await poll(token)) {
    await new Promise((ok) => setTimeout(ok, 3000));
  }
}

main();
