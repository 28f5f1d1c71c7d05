// A small SMTP client (RFC 5321) on Node sockets, enough to hand alert mail to a relay: EHLO, STARTTLS
// when the server offers it (required before credentials leave the machine), AUTH PLAIN or LOGIN,
// MAIL/RCPT/DATA with dot-stuffing, QUIT. `smtps://` is TLS from the first byte. Replies are read as
// whole multi-line responses; every step has the one overall deadline.

import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { integerSetting, onOffSetting, SettingError } from '../../core/spec/settings.ts';

export interface SmtpSettings {
  /** `smtps://`: TLS from the start (port 465). */
  secure: boolean;
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  from: string;
  /** Name sent in EHLO. */
  clientName: string;
  /** `?starttls=never` turns STARTTLS off (a relay on the same host); default: used when offered. */
  startTls: boolean;
  /** `?tls_verify=false` accepts an unverifiable certificate (a private relay); default true. */
  verifyCertificate: boolean;
  timeoutMs: number;
}

export interface SmtpReply {
  code: number;
  lines: string[];
}

/**
 * Reads `smtp://user:pass@host:port?from=alerts@example.com` at start; a value it cannot use stops the start
 * (SettingError: one line naming KEYWAY_SMTP_URL, never the password) rather than the first alert's delivery.
 */
export function parseSmtpUrl(text: string): SmtpSettings {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SettingError('KEYWAY_SMTP_URL is not a URL (smtp://user:pass@host:port?from=alerts@example.com)');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new SettingError('KEYWAY_SMTP_URL must start with smtp:// or smtps://');
  const secure = url.protocol === 'smtps:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new SettingError('KEYWAY_SMTP_URL has no host');
  const from = url.searchParams.get('from') ?? `keyway@${host}`;
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(from)) throw new SettingError("KEYWAY_SMTP_URL's from= is not an e-mail address");
  return {
    secure,
    host,
    port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    from,
    clientName: url.searchParams.get('helo') ?? 'keyway.localhost',
    startTls: url.searchParams.get('starttls') !== 'never',
    verifyCertificate: onOffSetting("KEYWAY_SMTP_URL's tls_verify=", url.searchParams.get('tls_verify') ?? undefined, true),
    timeoutMs: integerSetting("KEYWAY_SMTP_URL's timeout_ms=", url.searchParams.get('timeout_ms') ?? undefined, 15_000, 1, 600_000),
  };
}

/** SNI carries host names only, never addresses. */
function serverName(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** One SMTP conversation over a socket that may be upgraded to TLS halfway. */
class SmtpConversation {
  private buffer = '';
  private pending: SmtpReply['lines'] = [];
  private waiter: { resolve(reply: SmtpReply): void; reject(error: Error): void } | undefined;
  private replies: SmtpReply[] = [];
  private failure: Error | undefined;
  private socket!: Socket | TLSSocket;

  constructor(socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (error: Error) => this.fail(new Error(`connection failed: ${error.message}`)));
    socket.on('close', () => this.fail(new Error('the mail server closed the connection')));
  }

  get raw(): Socket | TLSSocket {
    return this.socket;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    for (let end = this.buffer.indexOf('\r\n'); end >= 0; end = this.buffer.indexOf('\r\n')) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.pending.push(line.slice(4));
      // `250-…` continues a reply; `250 …` (or a bare code) ends it.
      if (line.charAt(3) === '-') continue;
      const reply = { code: Number(line.slice(0, 3)), lines: this.pending };
      this.pending = [];
      if (this.waiter !== undefined) {
        const waiter = this.waiter;
        this.waiter = undefined;
        waiter.resolve(reply);
      } else this.replies.push(reply);
    }
  }

  fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = undefined;
  }

  read(): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Sends a command and reads its reply; a reply outside `expected` rejects with its code (not its text, which may echo an address). */
  async command(line: string, expected: number[], what: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.expect(expected, what);
  }

  async expect(expected: number[], what: string): Promise<SmtpReply> {
    const reply = await this.read();
    if (!expected.includes(reply.code)) {
      const enhanced = /^\d\.\d{1,3}\.\d{1,3}/.exec(reply.lines[0] ?? '')?.[0];
      throw new Error(`the mail server refused ${what} (${reply.code}${enhanced === undefined ? '' : ` ${enhanced}`})`);
    }
    return reply;
  }

  write(text: string): void {
    this.socket.write(text);
  }

  /** Swaps the plain socket for TLS over it (STARTTLS). */
  async upgrade(settings: SmtpSettings): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secured = await new Promise<TLSSocket>((resolve, reject) => {
      const tls = connectTls(
        { socket: plain, servername: serverName(settings.host), host: settings.host, rejectUnauthorized: settings.verifyCertificate },
        () => resolve(tls),
      );
      tls.once('error', reject);
    });
    this.attach(secured);
  }
}

function open(settings: SmtpSettings): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = settings.secure
      ? connectTls({ host: settings.host, port: settings.port, servername: serverName(settings.host), rejectUnauthorized: settings.verifyCertificate })
      : connectTcp({ host: settings.host, port: settings.port });
    socket.once(settings.secure ? 'secureConnect' : 'connect', () => resolve(socket));
    socket.once('error', (error) => reject(new Error(`the mail server could not be reached: ${error.message}`)));
  });
}

function extensionsOf(reply: SmtpReply): Map<string, string> {
  const extensions = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const [name = '', ...rest] = line.trim().split(/\s+/);
    extensions.set(name.toUpperCase(), rest.join(' ').toUpperCase());
  }
  return extensions;
}

async function authenticate(conversation: SmtpConversation, settings: SmtpSettings, extensions: Map<string, string>, secured: boolean): Promise<void> {
  if (settings.username === undefined) return;
  // Credentials never cross the network in the clear; a relay on the same machine is the exception.
  if (!secured && !isLoopback(settings.host)) throw new Error('the mail server offers no TLS (STARTTLS), so Keyway will not send it the SMTP password');
  const mechanisms = (extensions.get('AUTH') ?? '').split(/\s+/);
  const password = settings.password ?? '';
  if (mechanisms.includes('PLAIN')) {
    const token = Buffer.from(`\u0000${settings.username}\u0000${password}`).toString('base64');
    await conversation.command(`AUTH PLAIN ${token}`, [235], 'the credentials');
  } else if (mechanisms.includes('LOGIN')) {
    await conversation.command('AUTH LOGIN', [334], 'AUTH LOGIN');
    await conversation.command(Buffer.from(settings.username).toString('base64'), [334], 'the user name');
    await conversation.command(Buffer.from(password).toString('base64'), [235], 'the credentials');
  } else throw new Error('the mail server offers neither AUTH PLAIN nor AUTH LOGIN');
}

/** Dot-stuffing and CRLF line ends, ending with the lone dot. */
function dataOf(message: string): string {
  const lines = message.replace(/\r?\n/g, '\r\n').split('\r\n');
  return `${lines.map((line) => (line.startsWith('.') ? `.${line}` : line)).join('\r\n')}\r\n.\r\n`;
}

/** Hands one message to the server for `recipients`. Rejects on any refusal; never with the password or an address in the message. */
export async function sendMail(settings: SmtpSettings, recipients: string[], message: string): Promise<void> {
  const socket = await open(settings);
  const conversation = new SmtpConversation(socket);
  const deadline = setTimeout(() => {
    conversation.fail(new Error(`the mail server did not finish within ${settings.timeoutMs} ms`));
    conversation.raw.destroy();
  }, settings.timeoutMs);
  try {
    await conversation.expect([220], 'the connection');
    let extensions = extensionsOf(await conversation.command(`EHLO ${settings.clientName}`, [250], 'EHLO'));
    let secured = settings.secure;
    if (!secured && settings.startTls && extensions.has('STARTTLS')) {
      await conversation.command('STARTTLS', [220], 'STARTTLS');
      await conversation.upgrade(settings);
      secured = true;
      extensions = extensionsOf(await conversation.command(`EHLO ${settings.clientName}`, [250], 'EHLO'));
    }
    await authenticate(conversation, settings, extensions, secured);
    await conversation.command(`MAIL FROM:<${settings.from}>`, [250], 'the sender');
    for (const recipient of recipients) await conversation.command(`RCPT TO:<${recipient}>`, [250, 251], 'the recipient');
    await conversation.command('DATA', [354], 'DATA');
    conversation.write(dataOf(message));
    await conversation.expect([250], 'the message');
    conversation.write('QUIT\r\n');
  } finally {
    clearTimeout(deadline);
    conversation.raw.end();
  }
}
