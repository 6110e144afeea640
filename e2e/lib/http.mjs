// Small bounded HTTP helpers (Node's global fetch) for the end-to-end tests.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

export const HTTP_TIMEOUT_MS = 10_000;

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Sends one request and reads the whole body.
 * Options: `json` (JSON body), `form` (urlencoded body), `token` (bearer), `authorization`
 * (raw header value), `cookie`, `redirect` ("follow" | "manual").
 * Returns `{ status, headers, text, json() }`.
 */
export async function request(baseUrl, method, path, { json, form, token, authorization, cookie, redirect = "follow" } = {}) {
  const headers = {};
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  if (form !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(form).toString();
  }
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (authorization !== undefined) headers.authorization = authorization;
  if (cookie !== undefined) headers.cookie = cookie;
  const response = await fetch(new URL(path, baseUrl), {
    method,
    headers,
    body,
    redirect,
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    json() {
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`${method} ${path}: body is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
      }
    },
  };
}

/** A user name that is unique for this run: `prefix` plus 8 random hex digits. */
export function uniqueName(prefix) {
  return `${prefix}${randomBytes(4).toString("hex")}`;
}

/**
 * Registers a fresh account and fetches a bearer token for it.
 * Resolves with `{ id, userName, password, token }`.
 */
export async function createUser(baseUrl, prefix) {
  const userName = uniqueName(prefix);
  const password = `Pw-${randomBytes(6).toString("hex")}!`;
  const registered = await request(baseUrl, "POST", "/account/register", { json: { userName, password } });
  assert.equal(registered.status, 200, `register ${userName}: ${registered.text}`);
  const body = registered.json();
  assert.equal(body.userName, userName);
  assert.match(body.id, UUID_RE);
  const issued = await request(baseUrl, "POST", "/account/token", { json: { userName, password } });
  assert.equal(issued.status, 200, `token for ${userName}: ${issued.text}`);
  const { token } = issued.json();
  assert.equal(typeof token, "string");
  assert.ok(token.length > 0);
  return { id: body.id, userName, password, token };
}

/** The `name=value` part of the first Set-Cookie header, or undefined. */
export function sessionCookie(headers) {
  const all = typeof headers.getSetCookie === "function" ? headers.getSetCookie() : [headers.get("set-cookie")].filter(Boolean);
  if (all.length === 0) return undefined;
  return all[0].split(";")[0].trim();
}
