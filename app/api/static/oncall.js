// The on-call page: alerts live from /v1/alerts/stream, acknowledge and silence when signed in with an operator key.
// The key is exchanged once for an HttpOnly session cookie (POST /v1/sessions) and never kept by the page.
// The stream resumes with ?after=<last seq>, so a dropped connection loses nothing.
// Each alert is read on its own campaign's clock: a live alert by its age on the wall clock, a rehearsal's alert
// (clock "replay") with a 演练/REHEARSAL badge and the night's time it fired in the campaign's time zone (its
// fired_at is the night's, weeks ago on the wall clock). The header shows each rehearsed night's clock and phase.
// Values are live: a "values" frame brings a firing alert's latest value and summary (the ones the wall shows), and
// each card shows the value now beside the value when it fired. The snapshot brings the alerts resolved in the last
// minutes, so "Recently resolved" survives a reload; a resolved card says how long its alert lasted.
"use strict";

const TEXT = {
  zh: {
    title: "值班告警", connecting: "连接中…", live: "实时", reconnecting: "重新连接中…",
    emergency: "紧急", warning: "警告", reminder: "提醒", resolved: "最近恢复",
    key_prompt: "值班密钥（operator key）", save_key: "登录", forget_key: "退出登录",
    enable_sound: "开启声音", sound_on: "声音已开启", ack: "确认", silence: "静默 1 小时",
    acked_by: "已确认：", awaiting_ack: "已恢复，待确认：大屏横幅保留到有人确认", since: "持续", lasted: "持续了", runbook: "处置", open_wall: "打开大屏",
    now: "当前", at_fire: "触发时", at_resolve: "恢复时", unit: { d: "天", h: "小时", m: "分", s: "秒" },
    view_only: "只读（大屏密钥）：登录值班密钥后可确认和静默。", bad_key: "密钥无效或权限不足。",
    ack_done: "已确认。", silence_done: "已静默 1 小时。", failed: "操作失败：",
    none: "暂无", lang: "English",
    rehearsal: "演练", fired_night: "活动时间触发于", next_phase: "距{phase}",
    phases: { preheat: "预热期", burst: "爆发期", wrapup: "收尾期" }, days: "天",
  },
  en: {
    title: "On-call alerts", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
    emergency: "Emergency", warning: "Warning", reminder: "Reminder", resolved: "Recently resolved",
    key_prompt: "On-call key (operator key)", save_key: "Sign in", forget_key: "Sign out",
    enable_sound: "Enable sound", sound_on: "Sound on", ack: "Acknowledge", silence: "Silence 1 h",
    acked_by: "Acknowledged by ", awaiting_ack: "Resolved, awaiting acknowledgment: the wall's banner stays until someone acknowledges", since: "for", lasted: "lasted", runbook: "First step", open_wall: "Open wall",
    now: "now:", at_fire: "when fired:", at_resolve: "when resolved:", unit: { d: "d ", h: "h ", m: "m ", s: "s" },
    view_only: "View only (screen key): sign in with an operator key to acknowledge and silence.",
    bad_key: "The key is not valid or lacks the scope.", ack_done: "Acknowledged.",
    silence_done: "Silenced for 1 hour.", failed: "Failed: ", none: "None", lang: "中文",
    rehearsal: "REHEARSAL", fired_night: "fired at night time", next_phase: "{phase} in",
    phases: { preheat: "Pre-heat", burst: "Burst", wrapup: "Wrap-up" }, days: "d",
  },
};
const SEVERITIES = ["emergency", "warning", "reminder"];
const RESOLVED_KEPT_MS = 10 * 60 * 1000;
const RECONNECT_MAX_MS = 15000;
const CSRF_HEADER = { "X-Warroom-Request": "oncall" };
const ALARM_REPEAT_MS = 30000;

const params = new URLSearchParams(location.search);
const screenToken = params.get("token");
let lang = ["zh", "en"].includes(params.get("lang")) ? params.get("lang") : (navigator.language || "zh").startsWith("zh") ? "zh" : "en";
let session = null;
let lastSeq = null;
let retryMs = 500;
let audio = null;
const alerts = new Map();
const resolved = new Map();
// Resolved emergencies nobody has acknowledged (ids): the wall keeps them on its banner, so they keep their card and
// its Acknowledge button here; and the ids seen at emergency, which join them when they resolve.
const awaiting = new Set();
const emergencies = new Set();
let nights = [];

const t = (name) => TEXT[lang][name];
const $ = (id) => document.getElementById(id);

function epoch(value) {
  if (value === null || value === undefined) return null;
  return typeof value === "number" ? value : Date.parse(value) / 1000;
}

function span(seconds) {
  // A duration in the page's language, to the second under an hour: 2分36秒 / 2m 36s, 1小时02分 / 1h 02m
  // (the same as app/core/quantities.py elapsed()).
  const s = Math.max(0, Math.floor(seconds));
  const u = t("unit");
  const pad = (n) => String(n).padStart(2, "0");
  const two = (a, ua, b, ub) => `${a}${u[ua]}${pad(b)}${u[ub]}`.trim();
  if (s >= 86400) return `${Math.floor(s / 86400)}${u.d}${Math.floor((s % 86400) / 3600)}${u.h}`.trim();
  if (s >= 3600) return two(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "m");
  if (s >= 60) return two(Math.floor(s / 60), "m", s % 60, "s");
  return `${s}${u.s}`.trim();
}

function age(seconds) {
  return span(Date.now() / 1000 - seconds);
}

function clockTime(seconds, zone) {
  // HH:MM:SS of an epoch time in a campaign's time zone (UTC if the browser does not know the zone).
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  try {
    return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: zone || "UTC" }).format(new Date(seconds * 1000));
  } catch (error) {
    return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" }).format(new Date(seconds * 1000));
  }
}

function countdown(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const days = Math.floor(total / 86400);
  const rest = total % 86400;
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(Math.floor(rest / 3600))}:${pad(Math.floor((rest % 3600) / 60))}:${pad(rest % 60)}`;
  return days ? `${days}${t("days")} ${clock}` : clock;
}

function isRehearsal(a) {
  return a.clock === "replay";
}

function applyTexts() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-text]").forEach((el) => { el.textContent = t(el.dataset.text); });
  $("lang").textContent = t("lang");
  if (audio) $("sound").textContent = t("sound_on");
}

function fields(a) {
  // What a card shows of an alert, from a snapshot's alert, a stored alert or a transition frame.
  return { id: a.id, severity: a.severity, labels: a.labels, rule: a.rule, values: a.values,
    fired_at: epoch(a.fired_at), clock: a.clock || "live", timezone: a.timezone || "UTC",
    summary_en: a.summary_en, summary_zh: a.summary_zh, runbook_en: a.runbook_en, runbook_zh: a.runbook_zh,
    link: a.link, reading: a.reading || null };
}

function stored(a) {
  // A resolved alert as the store keeps it (the snapshot's "resolved"): kept on the page as long as one seen to
  // resolve, counted from when it resolved on the wall clock (a rehearsal's resolved_at is its night's).
  const card = { ...fields(a), resolved_at: epoch(a.resolved_at),
    gone_at: isRehearsal(a) ? epoch(a.updated_at) : epoch(a.resolved_at) };
  if (a.ack_by) card.acknowledged = { by: a.ack_by, at: epoch(a.ack_at), comment: a.ack_comment };
  return card;
}

function remember(alert) {
  const previous = alerts.get(alert.id) || {};
  alerts.set(alert.id, { ...previous, ...alert });
}

function onSnapshot(frame) {
  alerts.clear();
  awaiting.clear();
  for (const id of frame.awaiting || []) awaiting.add(id);
  for (const a of frame.alerts) {
    remember({ ...fields(a), acknowledged: a.acknowledged, fired_reading: a.fired_reading || null });
    if (a.severity === "emergency") emergencies.add(a.id);
  }
  for (const a of frame.resolved || []) if (!resolved.has(a.id)) resolved.set(a.id, stored(a));
  nights = frame.clocks || [];
  lastSeq = frame.seq;
  if (unacknowledgedEmergency()) alarm();
}

function unacknowledgedEmergency() {
  // A rehearsal pages nobody who did not ask for it, the sound on this page included.
  return [...alerts.values()].some((a) => a.severity === "emergency" && !a.acknowledged && !isRehearsal(a));
}

function onTransition(frame) {
  lastSeq = frame.seq;
  if (frame.kind === "acknowledged") {
    // Acknowledgments are on the wall clock, whatever the alert's.
    const a = alerts.get(frame.id) || resolved.get(frame.id);
    if (a) a.acknowledged = { ...frame.values, at: epoch(frame.at) };
    awaiting.delete(frame.id);
    return;
  }
  if (frame.severity === "emergency") emergencies.add(frame.id);
  if (frame.kind === "resolved") {
    const a = alerts.get(frame.id) || { ...fields(frame), fired_reading: null };
    alerts.delete(frame.id);
    if (emergencies.has(frame.id) && !a.acknowledged) awaiting.add(frame.id);
    // A rehearsal resolves at the night's time: it is kept as long as one the page has just seen resolve.
    resolved.set(frame.id, { ...a, ...fields(frame), fired_reading: a.fired_reading, acknowledged: a.acknowledged,
      resolved_at: epoch(frame.at), gone_at: isRehearsal(a) ? Date.now() / 1000 : epoch(frame.at) });
    return;
  }
  const isNew = !alerts.has(frame.id);
  remember({ ...fields(frame), ...(isNew ? { fired_reading: frame.reading || null } : {}) });
  if (frame.severity === "emergency" && (isNew || frame.kind === "escalated") && !isRehearsal(fields(frame))) alarm();
}

function onValues(frame) {
  // The latest values of firing alerts, as the wall shows them now.
  for (const now of frame.alerts) {
    const a = alerts.get(now.id);
    if (a) Object.assign(a, { values: now.values, reading: now.reading, summary_en: now.summary_en, summary_zh: now.summary_zh });
  }
}

function readingText(reading) {
  return reading ? (lang === "zh" ? reading.zh : reading.en) : null;
}

function alarm() {
  if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
  if (!audio) return;
  const now = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.3, now + i * 0.4);
    gain.gain.exponentialRampToValueAtTime(0.001, now + i * 0.4 + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + i * 0.4);
    osc.stop(now + i * 0.4 + 0.3);
  }
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function card(a, isResolved) {
  const waiting = isResolved && awaiting.has(a.id);
  const li = element("li", `alert ${isResolved ? "resolved" : a.severity}${waiting ? " awaiting" : ""}${a.acknowledged ? " acked" : ""}`);
  li.dataset.id = a.id;
  li.append(element("div", "summary", lang === "zh" ? a.summary_zh : a.summary_en));
  const labels = Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(" · ");
  const meta = element("div", "meta");
  if (isRehearsal(a)) {
    meta.append(element("span", "rehearsal", t("rehearsal")), ` ${a.rule || ""} · ${labels} · ${t("fired_night")} `);
    meta.append(element("span", "night-time", clockTime(a.fired_at, a.timezone)));
    if (isResolved) meta.append(` · ${t("lasted")} `, element("span", "lasted", span(a.resolved_at - a.fired_at)));
  } else if (isResolved) {
    meta.append(`${a.rule || ""} · ${labels} · ${t("lasted")} `, element("span", "lasted", span(a.resolved_at - a.fired_at)));
  } else {
    meta.append(`${a.rule || ""} · ${labels} · ${t("since")} `);
    const since = element("span", "age", age(a.fired_at));
    since.dataset.firedAt = a.fired_at;
    meta.append(since);
  }
  li.append(meta);
  const now = readingText(a.reading);
  const fired = readingText(a.fired_reading);
  if (now || fired) {
    const values = element("div", "values");
    if (now) values.append(`${t(isResolved ? "at_resolve" : "now")} `, element("strong", "value-now", now));
    if (now && fired) values.append(" · ");
    if (fired) values.append(`${t("at_fire")} `, element("span", "value-fired", fired));
    li.append(values);
  }
  const runbook = lang === "zh" ? a.runbook_zh : a.runbook_en;
  if (runbook) li.append(element("div", "runbook", `${t("runbook")}: ${runbook}`));
  if (a.acknowledged) {
    const when = a.acknowledged.at ? ` · ${clockTime(a.acknowledged.at, a.timezone)}` : "";
    li.append(element("div", "ack-by", `${t("acked_by")}${a.acknowledged.by}${when}`));
  }
  if (waiting) li.append(element("div", "awaiting-note", t("awaiting_ack")));
  if (!isResolved || (waiting && canAct())) {
    const actions = element("div", "actions");
    if (canAct() && !a.acknowledged) {
      const ack = element("button", "primary ack", t("ack"));
      ack.type = "button";
      ack.onclick = () => acknowledge(a.id);
      actions.append(ack);
    }
    if (canAct() && !isResolved) {
      const silence = element("button", "silence", t("silence"));
      silence.type = "button";
      silence.onclick = () => silenceAlert(a);
      actions.append(silence);
    }
    if (a.link) {
      const link = element("a", "", t("open_wall"));
      link.href = a.link + (lang === "en" ? "?lang=en" : "");
      actions.append(link);
    }
    li.append(actions);
  }
  return li;
}

function nightLine(night) {
  const name = (lang === "zh" && night.name_zh) || night.name || night.campaign;
  const parts = [clockTime(night.now, night.timezone)];
  if (night.phase) parts.push(t("phases")[night.phase] || night.phase);
  if (night.next_phase && night.next_phase_at !== null) {
    const phase = t("phases")[night.next_phase] || night.next_phase;
    parts.push(`${t("next_phase").replace("{phase}", phase)} ${countdown(night.next_phase_at - night.now)}`);
  }
  const li = element("li", "night");
  li.dataset.campaign = night.campaign;
  li.append(element("span", "rehearsal", t("rehearsal")), ` ${name} · `, element("span", "night-clock", parts.join(" · ")));
  return li;
}

function render() {
  $("nights").replaceChildren(...nights.map(nightLine));
  const cutoff = Date.now() / 1000 - RESOLVED_KEPT_MS / 1000;
  for (const [id, a] of resolved) if (a.gone_at < cutoff && !awaiting.has(id)) resolved.delete(id);
  for (const severity of SEVERITIES) {
    const list = $(`list-${severity}`);
    const items = [...alerts.values()].filter((a) => a.severity === severity).sort((x, y) => y.fired_at - x.fired_at);
    list.replaceChildren(...(items.length ? items.map((a) => card(a, false)) : [element("li", "empty", t("none"))]));
  }
  const done = [...resolved.values()].sort((x, y) => awaiting.has(y.id) - awaiting.has(x.id) || y.gone_at - x.gone_at);
  $("list-resolved").replaceChildren(...(done.length ? done.map((a) => card(a, true)) : [element("li", "empty", t("none"))]));
}

function setStatus(live) {
  const status = $("status");
  status.className = `status ${live ? "live" : "offline"}`;
  status.dataset.text = live ? "live" : "reconnecting";
  status.textContent = t(status.dataset.text);
}

function connect() {
  nights = [];  // a resumed stream sends the rehearsed nights' clocks first when there are any
  const query = new URLSearchParams();
  if (lastSeq !== null) query.set("after", lastSeq);
  if (!session && screenToken) query.set("token", screenToken);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/alerts/stream?${query}`);
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "snapshot") onSnapshot(frame);
    else if (frame.type === "transition") onTransition(frame);
    else if (frame.type === "clocks") nights = frame.clocks;
    else if (frame.type === "values") onValues(frame);
    retryMs = 500;
    setStatus(true);
    render();
  };
  socket.onclose = (event) => {
    setStatus(false);
    if (event.code === 4401 || event.code === 4403) {
      $("notice").textContent = t("bad_key");
      session = null;
      showLogin();
      return;
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(RECONNECT_MAX_MS, retryMs * 2);
  };
}

function canAct() {
  return session !== null && session.scope === "operator";
}

async function call(path, body, method = "POST") {
  const response = await fetch(path, {
    method, headers: { "Content-Type": "application/json", ...CSRF_HEADER }, body: body && JSON.stringify(body),
  });
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    throw new Error((detail.error && detail.error.message) || response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

async function acknowledge(id) {
  try {
    await call(`/v1/alerts/${encodeURIComponent(id)}/ack`, { comment: "on-call page" });
    $("notice").textContent = t("ack_done");
  } catch (error) {
    $("notice").textContent = t("failed") + error.message;
  }
}

async function silenceAlert(a) {
  // Structured equality matchers: a label value is never read as an operator or a regex.
  const matchers = [{ name: "rule", op: "=", value: a.rule },
    ...Object.entries(a.labels || {}).map(([name, value]) => ({ name, op: "=", value: String(value) }))];
  const ends = new Date(Date.now() + 3600 * 1000).toISOString();
  try {
    await call("/v1/silences", { matchers, ends_at: ends, reason: "silenced from the on-call page" });
    $("notice").textContent = t("silence_done");
  } catch (error) {
    $("notice").textContent = t("failed") + error.message;
  }
}

function showLogin() {
  $("login").hidden = false;
}

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const field = $("key");
  try {
    session = await call("/v1/sessions", { key: field.value.trim() });
  } catch (error) {
    $("notice").textContent = t("bad_key");
    return;
  } finally {
    field.value = "";
  }
  $("login").hidden = true;
  $("notice").textContent = canAct() ? "" : t("view_only");
  lastSeq = null;
  connect();
};
$("logout").onclick = async () => {
  await call("/v1/sessions/current", null, "DELETE").catch(() => null);
  location.reload();
};
$("lang").onclick = () => { lang = lang === "zh" ? "en" : "zh"; applyTexts(); render(); };
$("sound").onclick = () => {
  audio = audio || new (window.AudioContext || window.webkitAudioContext)();
  audio.resume();
  $("sound").textContent = t("sound_on");
};

applyTexts();
render();
setInterval(() => {
  document.querySelectorAll(".age").forEach((el) => { el.textContent = age(Number(el.dataset.firedAt)); });
}, 1000);
setInterval(() => { if (unacknowledgedEmergency()) alarm(); }, ALARM_REPEAT_MS);
async function start() {
  let current;
  try {
    current = await (await fetch("/v1/sessions/current")).json();
  } catch (error) {  // the server is away: ask again, as the stream would reconnect
    setTimeout(start, retryMs);
    retryMs = Math.min(RECONNECT_MAX_MS, retryMs * 2);
    return;
  }
  session = current.signed_in ? current : null;
  if (session || screenToken) {
    if (!canAct()) $("notice").textContent = t("view_only");
    connect();
  } else {
    showLogin();
  }
}

start();
