// A local SMTP server for the e-mail tests: speaks enough RFC 5321 for a client to deliver (EHLO,
// AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records each accepted message decoded
// (headers and the base64 text body), refuses recipients at `fail.example` with 550, and can demand
// credentials. No TLS: the client's STARTTLS is used only when a server offers it.

import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, TLSSocket } from 'node:tls';

export interface ReceivedMail {
  from: string;
  to: string[];
  headers: Record<string, string>;
  subject: string;
  text: string;
  raw: string;
  /** Which AUTH mechanism the client used, if any. */
  auth: string | undefined;
  /** Whether the session had been upgraded with STARTTLS. */
  tls: boolean;
}

export interface SmtpServerOptions {
  /** When set, MAIL is refused until the client authenticated with these. */
  credentials?: { username: string; password: string };
  /** Mechanisms advertised in EHLO; default PLAIN and LOGIN. */
  mechanisms?: string[];
  /** Offers STARTTLS with this certificate, and then refuses AUTH and MAIL before the upgrade. */
  tls?: { key: string; cert: string };
  /** TLS from the first byte (smtps://) with this certificate. */
  implicitTls?: { key: string; cert: string };
}

export interface TestSmtpServer {
  port: number;
  url(userinfo?: string): string;
  received: ReceivedMail[];
  stop(): Promise<void>;
}

function decodeHeader(value: string): string {
  return value.replace(/=\?UTF-8\?B\?([^?]+)\?=/gi, (_, encoded: string) => Buffer.from(encoded, 'base64').toString('utf8'));
}

function parseMail(raw: string, from: string, to: string[], auth: string | undefined, tls: boolean): ReceivedMail {
  const split = raw.indexOf('\r\n\r\n');
  const headerText = raw.slice(0, split);
  const body = raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = decodeHeader(line.slice(colon + 1).trim());
  }
  const text = headers['content-transfer-encoding'] === 'base64' ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : body;
  return { from, to, headers, subject: headers.subject ?? '', text, raw, auth, tls };
}

function session(plain: Socket, options: SmtpServerOptions, received: ReceivedMail[]): void {
  let socket: Socket = plain;
  let secured = options.implicitTls !== undefined;
  let buffer = '';
  let from = '';
  let to: string[] = [];
  let data: string[] | undefined;
  let auth: string | undefined;
  let login: { step: 'user' | 'password'; username?: string } | undefined;
  const reply = (line: string) => socket.write(`${line}\r\n`);
  const check = (username: string, password: string, mechanism: string) => {
    const ok = options.credentials === undefined || (options.credentials.username === username && options.credentials.password === password);
    if (ok) auth = mechanism;
    reply(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
  };
  const handle = (line: string) => {
    if (data !== undefined) {
      if (line === '.') {
        received.push(parseMail(data.join('\r\n'), from, to, auth, secured));
        data = undefined;
        reply('250 2.0.0 queued');
      } else data.push(line.startsWith('..') ? line.slice(1) : line);
      return;
    }
    if (login !== undefined) {
      const decoded = Buffer.from(line, 'base64').toString('utf8');
      if (login.step === 'user') {
        login = { step: 'password', username: decoded };
        reply('334 UGFzc3dvcmQ6');
      } else {
        const username = login.username ?? '';
        login = undefined;
        check(username, decoded, 'LOGIN');
      }
      return;
    }
    const [verb = '', ...rest] = line.split(' ');
    const argument = rest.join(' ');
    switch (verb.toUpperCase()) {
      case 'EHLO':
        reply('250-smtp.test greets you');
        if (options.tls !== undefined && !secured) reply('250-STARTTLS');
        reply(`250-AUTH ${(options.mechanisms ?? ['PLAIN', 'LOGIN']).join(' ')}`);
        reply('250 8BITMIME');
        return;
      case 'HELO':
        reply('250 smtp.test');
        return;
      case 'STARTTLS': {
        if (options.tls === undefined || secured) return reply('502 5.5.1 STARTTLS not offered');
        reply('220 2.0.0 Ready to start TLS');
        const upgraded = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext(options.tls) });
        socket.removeAllListeners('data');
        secured = true;
        auth = undefined;
        buffer = '';
        listen(upgraded);
        return;
      }
      case 'AUTH': {
        if (options.tls !== undefined && !secured) return reply('530 5.7.0 Must issue a STARTTLS command first');
        const [mechanism = '', token] = argument.split(' ');
        if (mechanism.toUpperCase() === 'PLAIN' && token !== undefined) {
          const [, username = '', password = ''] = Buffer.from(token, 'base64').toString('utf8').split('\u0000');
          check(username, password, 'PLAIN');
        } else if (mechanism.toUpperCase() === 'LOGIN') {
          login = { step: 'user' };
          reply('334 VXNlcm5hbWU6');
        } else reply('504 5.5.4 Unrecognized authentication type');
        return;
      }
      case 'MAIL':
        if (options.credentials !== undefined && auth === undefined) return reply('530 5.7.0 Authentication required');
        from = /<([^>]*)>/.exec(argument)?.[1] ?? '';
        to = [];
        return reply('250 2.1.0 OK');
      case 'RCPT': {
        const address = /<([^>]*)>/.exec(argument)?.[1] ?? '';
        if (address.endsWith('@fail.example')) return reply(`550 5.1.1 <${address}>: Recipient address rejected`);
        to.push(address);
        return reply('250 2.1.5 OK');
      }
      case 'DATA':
        if (to.length === 0) return reply('503 5.5.1 No recipients');
        data = [];
        return reply('354 End data with <CR><LF>.<CR><LF>');
      case 'RSET':
        from = '';
        to = [];
        return reply('250 OK');
      case 'NOOP':
        return reply('250 OK');
      case 'QUIT':
        reply('221 Bye');
        socket.end();
        return;
      default:
        reply('502 5.5.2 Command not recognized');
    }
  };
  const listen = (next: Socket) => {
    socket = next;
    next.setEncoding('utf8');
    next.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        handle(line);
      }
    });
    next.on('error', () => undefined);
  };
  listen(plain);
  reply('220 smtp.test ESMTP ready');
}

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const received: ReceivedMail[] = [];
  const sockets = new Set<Socket>();
  const accept = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    session(socket, options, received);
  };
  const server: Server = options.implicitTls === undefined ? createServer(accept) : createTlsServer(options.implicitTls, accept);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    url: (userinfo) =>
      `${options.implicitTls === undefined ? 'smtp' : 'smtps'}://${userinfo === undefined ? '' : `${userinfo}@`}127.0.0.1:${port}?from=alerts@keyway.test`,
    received,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
