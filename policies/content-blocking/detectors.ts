// What the detectors can find, by id, with the label a refusal names. The id is stable (tests and
// docs use it); neither says anything about the content that matched.

export type DetectorId =
  | 'openai_api_key'
  | 'anthropic_api_key'
  | 'google_api_key'
  | 'aws_access_key'
  | 'aws_secret_key'
  | 'github_token'
  | 'slack_token'
  | 'stripe_secret_key'
  | 'private_key'
  | 'jwt'
  | 'payment_card'
  | 'us_ssn'
  | 'uk_nino'
  | 'ca_sin'
  | 'es_dni'
  | 'iban';

export const DETECTOR_LABELS: Record<DetectorId, string> = {
  openai_api_key: 'an OpenAI API key',
  anthropic_api_key: 'an Anthropic API key',
  google_api_key: 'a Google API key',
  aws_access_key: 'an AWS access key id',
  aws_secret_key: 'an AWS secret access key',
  github_token: 'a GitHub token',
  slack_token: 'a Slack token',
  stripe_secret_key: 'a Stripe secret key',
  private_key: 'a private key',
  jwt: 'a JSON Web Token',
  payment_card: 'a payment card number',
  us_ssn: 'a US Social Security number',
  uk_nino: 'a UK National Insurance number',
  ca_sin: 'a Canadian Social Insurance number',
  es_dni: 'a Spanish DNI number',
  iban: 'an IBAN',
};

/** Characters of a token run: [A-Za-z0-9_-]. Everything else (non-ASCII included) is a boundary. */
export const TOKEN_CHAR = new Uint8Array(128);
for (let code = 48; code <= 57; code++) TOKEN_CHAR[code] = 1;
for (let code = 65; code <= 90; code++) TOKEN_CHAR[code] = 1;
for (let code = 97; code <= 122; code++) TOKEN_CHAR[code] = 1;
TOKEN_CHAR[95] = 1; // _
TOKEN_CHAR[45] = 1; // -

export function isTokenChar(code: number): boolean {
  return code < 128 && TOKEN_CHAR[code] === 1;
}

export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

export function isUpper(code: number): boolean {
  return code >= 65 && code <= 90;
}

/** Letters and digits: what may not touch a number or an id on either side. */
export function isAlphanumeric(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** A space between the groups of a number or an id: ` `, or any Unicode space separator (Zs). */
export const SPACE_SEPARATOR = 1;
/** A hyphen between groups: `-`, or a Unicode hyphen or dash (‐ ‑ ‒ – — −, small and full-width hyphen-minus). */
export const DASH_SEPARATOR = 2;

/**
 * Which kind of separator `code` is (SPACE_SEPARATOR, DASH_SEPARATOR), or 0. Text pasted from PDFs
 * and web pages groups numbers with a no-break space (U+00A0), a narrow one (U+202F), a figure or
 * thin space (U+2007, U+2009) or an en dash as often as with ` ` and `-`. ASCII costs two compares.
 */
export function separatorKind(code: number): number {
  if (code === 32) return SPACE_SEPARATOR;
  if (code === 45) return DASH_SEPARATOR;
  if (code < 0xa0) return 0;
  if (code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a) || code === 0x202f || code === 0x205f || code === 0x3000) return SPACE_SEPARATOR;
  if ((code >= 0x2010 && code <= 0x2014) || code === 0x2212 || code === 0xfe63 || code === 0xff0d) return DASH_SEPARATOR;
  return 0;
}

export function isSpaceSeparator(code: number): boolean {
  return separatorKind(code) === SPACE_SEPARATOR;
}
