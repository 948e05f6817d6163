// mmdit serve's page: plain JavaScript, no build step. Every API call goes through fetch (so a bearer token can be sent),
// the event stream included (read as text/event-stream from a fetch body).
'use strict';
const $ = (id) => document.getElementById(id);
let model = null;
let current = null; // {id, abort}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = $('token').value.trim();
  if (t) h['Authorization'] = 'Bearer ' + t;
  return h;
}

function status(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({}, options, {headers: headers((options || {}).headers)}));
  const text = await res.text();
  let body = null;
  try { body = text.trim() ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!res.ok || (body && body.error)) {
    const msg = body && body.error ? body.error.message : res.status + ' ' + res.statusText;
    throw new Error(msg);
  }
  return body;
}

async function init() {
  const health = await (await fetch('/health')).json();
  $('token-box').hidden = !health.auth;
  $('token').value = localStorage.getItem('mmdit.token') || '';
  $('token').addEventListener('change', () => { localStorage.setItem('mmdit.token', $('token').value); loadModel(); });
  $('weight').addEventListener('input', () => { $('weight-value').textContent = $('weight').value; });
  $('direction').addEventListener('change', () => {
    document.querySelectorAll('.custom').forEach((e) => { e.hidden = $('direction').value !== 'custom'; });
  });
  $('form').addEventListener('submit', (e) => { e.preventDefault(); generate(); });
  $('cancel').addEventListener('click', cancel);
  await loadModel();
}

async function loadModel() {
  try {
    const m = (await api('/v1/models')).data[0];
    model = m;
    $('model').textContent = `${m.id} (${m.family}, ${m.guided_blocks} blocks, ${m.continuous_batching ? 'continuous batching' : 'one at a time'}, max batch ${m.max_batch})`;
    const size = $('size');
    size.innerHTML = '';
    const d = m.defaults.width;
    const sides = [...new Set([64, 128, d, 2 * d, 512, 1024].filter((s) => s >= 16 && s <= m.limits.max_side && s % 16 === 0))].sort((a, b) => a - b);
    for (const s of sides) {
      const o = document.createElement('option');
      o.value = s + 'x' + s; o.textContent = s + ' × ' + s;
      if (s === d && m.defaults.height === d) o.selected = true;
      size.appendChild(o);
    }
    if (m.defaults.height !== d) {
      const o = document.createElement('option');
      o.value = d + 'x' + m.defaults.height; o.textContent = d + ' × ' + m.defaults.height; o.selected = true;
      size.appendChild(o);
    }
    $('steps').value = m.defaults.steps;
    $('steps').max = m.limits.max_steps;
    $('layer-from').max = $('layer-to').max = m.guided_blocks - 1;
    $('layer-to').value = m.guided_blocks - 1;
    const dir = $('direction');
    for (const p of m.presets) {
      if ([...dir.options].some((o) => o.value === p)) continue;
      const o = document.createElement('option');
      o.value = p; o.textContent = p;
      dir.insertBefore(o, dir.lastElementChild);
    }
    const embedded = m.options.some((o) => o.startsWith('embedded guidance'));
    $('guidance-scale-box').hidden = !embedded;
    status('ready');
  } catch (e) {
    status(e.message, true);
  }
}

function request() {
  const body = {prompt: $('prompt').value, size: $('size').value, steps: Number($('steps').value)};
  const seed = $('seed').value.trim();
  body.seed = seed === '' ? Math.floor(Math.random() * 2 ** 31) : Number(seed);
  const gs = $('guidance-scale').value.trim();
  if (!$('guidance-scale-box').hidden && gs !== '') body.guidance_scale = Number(gs);
  const dir = $('direction').value;
  if (dir) {
    const d = dir === 'custom' ? {pos: $('pos').value, neg: $('neg').value} : {preset: dir};
    d.w = Number($('weight').value);
    const from = $('layer-from').value.trim(), to = $('layer-to').value.trim();
    d.layers = from === '' ? 'all' : to === '' ? from + '-' : from + '-' + to;
    d.steps = $('step-window').value.trim() || 'all';
    body.modulation_guidance = [d];
  }
  return body;
}

async function generate() {
  if (current) return;
  const body = request();
  $('generate').disabled = true;
  $('cancel').disabled = false;
  $('progress').value = 0;
  $('preview').hidden = true;
  status('submitting…');
  const abort = new AbortController();
  try {
    const job = await api('/v1/generations', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    current = {id: job.id, abort};
    status('queued');
    await events(job.id, abort.signal);
  } catch (e) {
    if (e.name !== 'AbortError') status(e.message, true);
  } finally {
    current = null;
    $('generate').disabled = false;
    $('cancel').disabled = true;
  }
}

// Reads the job's Server-Sent Events until it ends; closing the page closes the stream, which cancels the job.
async function events(id, signal) {
  const res = await fetch(`/v1/generations/${id}/events?previews=1&cancel_on_disconnect=1`,
      {headers: headers({'Accept': 'text/event-stream'}), signal});
  if (!res.ok) throw new Error('events: ' + res.status);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!data) continue;
      if (await onEvent(event, JSON.parse(data))) return;
    }
  }
}

async function onEvent(event, data) {
  if (event === 'step' || event === 'state') {
    const step = data.progress ? data.progress.step : data.step, steps = data.progress ? data.progress.steps : data.steps;
    $('progress').value = steps ? step / steps : 0;
    status(`${data.state} · step ${step} of ${steps}`);
    if (data.preview) { $('preview').src = data.preview; $('preview').hidden = false; }
    return false;
  }
  if (event === 'done') {
    $('progress').value = 1;
    status(`done in ${data.seconds.toFixed(2)} s`);
    for (const img of data.images) await addToGallery(data, img);
    return true;
  }
  if (event === 'cancelled') { status('cancelled: ' + data.cancel_reason); return true; }
  if (event === 'error') { status(data.error ? data.error.message : 'failed', true); return true; }
  return false;
}

async function addToGallery(job, img) {
  const res = await fetch(img.url, {headers: headers()});
  const blob = await res.blob();
  const card = document.createElement('div');
  card.className = 'card';
  const image = document.createElement('img');
  image.src = URL.createObjectURL(blob);
  image.alt = img.settings.prompts[0];
  image.dataset.id = job.id;
  const link = document.createElement('a');
  link.href = image.src;
  link.download = `${job.id}-${img.index}.png`;
  link.appendChild(image);
  const s = img.settings;
  const g = (s.modulation_guidance || []).map((d) => `${d.label} w ${d.w} layers ${d.layers} steps ${d.steps}`).join('; ') || 'none';
  const text = document.createElement('pre');
  text.textContent = `${s.prompts[0]}\nseed ${s.seed} · ${s.width}×${s.height} · ${s.steps} steps` +
      (s.guidance_scale !== undefined ? ` · guidance ${s.guidance_scale}` : '') + `\nmodulation guidance: ${g}`;
  card.appendChild(link);
  card.appendChild(text);
  $('gallery').prepend(card);
}

async function cancel() {
  if (!current) return;
  const c = current;
  try {
    await api('/v1/generations/' + c.id, {method: 'DELETE'});
  } catch (e) {
    status(e.message, true);
  }
}

init();
