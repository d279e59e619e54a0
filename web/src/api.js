// Calls to Persona's API with the dashboard's key. The key lives in sessionStorage (gone when the
// tab closes); a link may hand it over as #key=... (a fragment never reaches the server or its logs).

const KEY = 'persona.key';

export function takeKeyFromLocation() {
  const m = location.hash.match(/^#key=([^&/]+)(.*)$/);
  if (!m) return;
  sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + (m[2] && m[2].startsWith('/') ? '#' + m[2] : '#/overview'));
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function hasKey() {
  return !!sessionStorage.getItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, (data && (data.detail || data.title)) || res.statusText);
  return data;
}
