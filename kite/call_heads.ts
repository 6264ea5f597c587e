/**
 * The start of the calls a client sends, up to the value of `withArgs`
 * (Go field order, docs/protocol.md §3.1): the JSON of identities and
 * credentials already sent, kept beside the objects (not per connection: a
 * Kontrol holds thousands of idle ones), so that a call does not encode
 * them again. A token alone is ~700 characters.
 *
 * @module
 */
import type { Auth, KiteIdentity } from "./protocol.ts";

interface IdentityText {
  fields: string[];
  json: string;
  /**
   * Heads of calls without credentials by method — an accepted
   * connection's calls back start the same on all of them.
   */
  anonymous?: Map<string, string>;
}

/** Methods whose credential-free head one identity keeps. */
const MAX_ANONYMOUS_HEADS = 32;

const identityJSON = new WeakMap<KiteIdentity, IdentityText>();
const authJSON = new WeakMap<
  object,
  { type: string; key: string; json: string }
>();

function identityText(i: KiteIdentity): IdentityText {
  const c = identityJSON.get(i);
  if (c !== undefined && sameIdentity(c.fields, i)) return c;
  const text = { fields: identityFields(i), json: JSON.stringify(i) };
  identityJSON.set(i, text);
  return text;
}

/** `JSON.stringify(i)`, from a cache while `i` is unchanged. */
export function encodeIdentity(i: KiteIdentity): string {
  return identityText(i).json;
}

/** `JSON.stringify(auth)` for a plain `{type, key}` object, else `undefined`. */
export function encodeAuth(auth: Auth): string | undefined {
  if (
    typeof auth !== "object" || Object.getPrototypeOf(auth) !== Object.prototype
  ) return undefined;
  const { type, key } = auth;
  if (typeof type !== "string" || typeof key !== "string") return undefined;
  if (Object.keys(auth).length !== 2) return undefined;
  const c = authJSON.get(auth);
  if (c !== undefined && c.type === type && c.key === key) return c.json;
  const json = JSON.stringify(auth);
  authJSON.set(auth, { type, key, json });
  return json;
}

/** A call's options object up to `"withArgs":`, from the JSON of its identity and credentials. */
export function envelopeText(identity: string, auth: string): string {
  return '{"kite":' + identity + ',"authentication":' + auth +
    ',"responseCallback":"[Function]","withArgs":';
}

/** A call's text up to the value of `withArgs`. */
export function headText(method: string, envelope: string): string {
  return '{"method":' + JSON.stringify(method) + ',"arguments":[' + envelope;
}

/**
 * The head of a call of `method` sent by `identity` without credentials,
 * shared by all its connections; `undefined` past the methods kept.
 */
export function anonymousHead(
  identity: KiteIdentity,
  method: string,
): string | undefined {
  const text = identityText(identity);
  const heads = text.anonymous ??= new Map();
  let head = heads.get(method);
  if (head === undefined) {
    if (heads.size >= MAX_ANONYMOUS_HEADS) return undefined;
    head = headText(method, envelopeText(text.json, "null"));
    heads.set(method, head);
  }
  return head;
}

function identityFields(i: KiteIdentity): string[] {
  return [
    i.name,
    i.username,
    i.id,
    i.environment,
    i.region,
    i.version,
    i.hostname,
  ];
}

function sameIdentity(fields: string[], i: KiteIdentity): boolean {
  return fields[0] === i.name && fields[1] === i.username &&
    fields[2] === i.id && fields[3] === i.environment &&
    fields[4] === i.region && fields[5] === i.version &&
    fields[6] === i.hostname;
}
