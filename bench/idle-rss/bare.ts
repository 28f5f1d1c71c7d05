// The runtime floor for bench/idle-rss.ts: a Bun.serve answering "ok", nothing imported.
Bun.serve({ hostname: '127.0.0.1', port: Number(process.env.KEYWAY_PORT), fetch: () => new Response('ok') });
