// The estimator behind a cut stream's bill must never come in under a real tokenizer's count for
// typical text. The counts below were produced once with OpenAI's cl100k_base and o200k_base (the
// gpt-tokenizer package, outside this repository) and are kept here as data.

import { describe, expect, test } from 'bun:test';
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import {
  estimatedUsage,
  estimatePromptTokens,
  estimateTextTokens,
  IMAGE_TOKENS,
  MESSAGE_OVERHEAD_TOKENS,
  REPLY_PRIMING_TOKENS,
  TOOLS_OVERHEAD_TOKENS,
} from '../../core/accounting/token-estimate.ts';
import { StreamObserver } from '../../core/accounting/stream-observer.ts';
import type { ChatRequest } from '../../core/spec/vocabulary.ts';
import { IMAGE_QUESTION, IMAGE_QUESTION_TEXT } from './chat-fixtures.ts';

interface Sample {
  name: string;
  cl100k: number;
  o200k: number;
  text: string;
}

const SAMPLES: Sample[] = [
  {
    name: 'english',
    cl100k: 37,
    o200k: 37,
    text: 'The quick brown fox jumps over the lazy dog. Keyway is a self-hosted gateway that keeps the books right, even when the process crashes in the middle of a busy afternoon.',
  },
  {
    name: 'english2',
    cl100k: 44,
    o200k: 44,
    text: 'Summarize the following meeting notes in three bullet points. Attendees discussed the Q3 roadmap, the migration to the new billing provider, and hiring for two senior engineering roles. Concerns were raised about the timeline.',
  },
  { name: 'shortwords', cl100k: 34, o200k: 34, text: 'a b c d e f g h i j k l m n o p q r s t u v w x y z I a an to of in is it' },
  {
    name: 'code',
    cl100k: 57,
    o200k: 57,
    text: 'function costOf(catalog, provider, models, usage) {\n  for (const model of models) {\n    const info = catalog.get(provider, model);\n    if (info !== undefined) return usage.inputTokens * info.inputCostPerToken;\n  }\n  return undefined;\n}',
  },
  {
    name: 'python',
    cl100k: 56,
    o200k: 56,
    text: 'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(20)])\n',
  },
  {
    name: 'json',
    cl100k: 53,
    o200k: 54,
    text: '{"id":"chatcmpl-123","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}',
  },
  {
    name: 'markdown',
    cl100k: 43,
    o200k: 43,
    text: '# Title\n\n## Section 1\n\n- item one\n- item **two**\n- `code` item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote\n',
  },
  { name: 'url', cl100k: 29, o200k: 28, text: 'See https://example.com/api/v1/users?id=123&sort=desc#section and mailto:someone@example.org for details.' },
  {
    name: 'german',
    cl100k: 32,
    o200k: 21,
    text: 'Die Geschwindigkeitsbegrenzung auf der Autobahn wurde gestern von der Bundesregierung überraschend aufgehoben.',
  },
  {
    name: 'french',
    cl100k: 35,
    o200k: 25,
    text: "L'entreprise a annoncé hier qu'elle allait réduire ses émissions de carbone de moitié d'ici à la fin de la décennie.",
  },
  { name: 'spanish', cl100k: 27, o200k: 22, text: 'El niño comió una manzana mientras caminaba por el parque con su abuela después de la escuela.' },
  { name: 'finnish', cl100k: 42, o200k: 29, text: 'Epäjärjestelmällisyydellänsäkään hän ei ollut ymmärtänyt järjestelmän toimintaperiaatteita.' },
  { name: 'polish', cl100k: 47, o200k: 39, text: 'Zażółć gęślą jaźń. Chrząszcz brzmi w trzcinie w Szczebrzeszynie, a Szczebrzeszyn z tego słynie.' },
  { name: 'turkish', cl100k: 38, o200k: 28, text: 'Çekoslovakyalılaştıramadıklarımızdanmışsınız diye bir kelime Türkçede gerçekten vardır.' },
  { name: 'vietnamese', cl100k: 47, o200k: 23, text: 'Tôi yêu tiếng Việt vì nó rất phong phú và đẹp đẽ, với nhiều dấu thanh khác nhau.' },
  { name: 'indonesian', cl100k: 28, o200k: 21, text: 'Pemerintah mengumumkan kebijakan baru untuk meningkatkan kesejahteraan masyarakat pedesaan.' },
  { name: 'chinese', cl100k: 41, o200k: 33, text: '我们的网关在进程崩溃时也能保证账目正确。每一个请求都被记录下来，没有丢失，也没有重复。' },
  { name: 'japanese', cl100k: 50, o200k: 39, text: 'このゲートウェイは、プロセスがクラッシュしても帳簿を正しく保ちます。すべてのリクエストが記録されます。' },
  { name: 'korean', cl100k: 33, o200k: 21, text: '이 게이트웨이는 프로세스가 중단되어도 장부를 정확하게 유지합니다.' },
  { name: 'russian', cl100k: 41, o200k: 24, text: 'Этот шлюз сохраняет правильный учёт даже при аварийном завершении процесса. Каждый запрос записывается.' },
  { name: 'hindi', cl100k: 85, o200k: 28, text: 'यह गेटवे प्रक्रिया के क्रैश होने पर भी खातों को सही रखता है। हर अनुरोध दर्ज किया जाता है।' },
  { name: 'arabic', cl100k: 52, o200k: 21, text: 'هذه البوابة تحافظ على صحة الحسابات حتى عند تعطل العملية. يتم تسجيل كل طلب.' },
  { name: 'hebrew', cl100k: 53, o200k: 17, text: 'השער הזה שומר על הספרים נכונים גם כאשר התהליך קורס.' },
  { name: 'thai', cl100k: 69, o200k: 33, text: 'เกตเวย์นี้รักษาบัญชีให้ถูกต้องแม้ว่ากระบวนการจะล่ม ทุกคำขอจะถูกบันทึกไว้' },
  { name: 'greek', cl100k: 67, o200k: 26, text: 'Αυτή η πύλη διατηρεί τα βιβλία σωστά ακόμη και όταν η διαδικασία καταρρέει.' },
  { name: 'emoji', cl100k: 45, o200k: 34, text: 'Great job! 🎉🎉 Thanks 🙏 see you 👋 😀😃😄 👨‍👩‍👧‍👦 🇫🇷' },
  { name: 'numbers', cl100k: 30, o200k: 30, text: '3.14159265358979 2718281828 1234567890 42 7 1000000 0.000001' },
  { name: 'dates', cl100k: 33, o200k: 33, text: 'On 2024-03-15 at 14:30:00 UTC, order #48213 shipped 17 items for $1,249.99.' },
  { name: 'whitespace', cl100k: 10, o200k: 10, text: 'a   b\n\n\n   c\t\t\td    e' },
  { name: 'short', cl100k: 1, o200k: 1, text: 'hi' },
  { name: 'camel', cl100k: 13, o200k: 16, text: 'getUserAccountSettingsById parseHTTPResponseHeaders XMLHttpRequest snake_case_identifier_name' },
  { name: 'hex', cl100k: 62, o200k: 62, text: 'a3f9c2e81b7d4f6a09e5c3b2d1f0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2' },
  { name: 'uuid', cl100k: 18, o200k: 18, text: '550e8400-e29b-41d4-a716-446655440000' },
  { name: 'ukrainian', cl100k: 43, o200k: 25, text: 'Цей шлюз зберігає правильний облік навіть у разі аварійного завершення процесу.' },
  {
    name: 'portuguese',
    cl100k: 28,
    o200k: 21,
    text: 'A empresa anunciou ontem que vai reduzir as suas emissões de carbono para metade até ao final da década.',
  },
  { name: 'italian', cl100k: 30, o200k: 26, text: "L'azienda ha annunciato ieri che ridurrà le proprie emissioni di carbonio entro la fine del decennio." },
  {
    name: 'sql',
    cl100k: 54,
    o200k: 54,
    text: "SELECT u.id, u.email, COUNT(o.id) AS orders FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at > '2024-01-01' GROUP BY u.id HAVING COUNT(o.id) > 5;",
  },
  {
    name: 'html',
    cl100k: 45,
    o200k: 45,
    text: '<div class="card"><h2 id="title">Hello</h2><p style="color:red">World &amp; more</p><a href="/x?y=1">link</a></div>',
  },
  {
    name: 'yaml',
    cl100k: 38,
    o200k: 38,
    text: 'services:\n  keyway:\n    image: keyway:latest\n    ports:\n      - "8080:8080"\n    environment:\n      KEYWAY_DATA_DIR: /data\n',
  },
  { name: 'csv', cl100k: 39, o200k: 39, text: 'id,name,price,qty\n1,Widget,9.99,3\n2,Gadget,19.50,12\n3,Doohickey,0.75,100\n' },
  { name: 'math', cl100k: 43, o200k: 43, text: "Let f(x) = x^2 + 3x - 4. Then f'(x) = 2x + 3, and the roots are x = 1 and x = -4." },
];

describe('estimateTextTokens', () => {
  for (const sample of SAMPLES) {
    test(`${sample.name}: at least cl100k's ${sample.cl100k} and o200k's ${sample.o200k}`, () => {
      expect(estimateTextTokens(sample.text)).toBeGreaterThanOrEqual(Math.max(sample.cl100k, sample.o200k));
    });
  }

  test('stays within a small factor for English, so an estimated bill is not wildly high', () => {
    for (const name of ['english', 'english2', 'code', 'json', 'markdown']) {
      const sample = SAMPLES.find((candidate) => candidate.name === name) as Sample;
      expect(estimateTextTokens(sample.text)).toBeLessThanOrEqual(Math.ceil(sample.cl100k * 2.2));
    }
  });

  test('the empty text is 0 tokens; any other text at least 1', () => {
    expect(estimateTextTokens('')).toBe(0);
    expect(estimateTextTokens('a')).toBe(1);
    expect(estimateTextTokens(' ')).toBe(1);
    expect(estimateTextTokens('.')).toBe(1);
    expect(estimateTextTokens('\u4e2d')).toBe(2);
  });

  test('never decreases when text is appended', () => {
    let text = '';
    let previous = 0;
    for (const piece of ['Hello', ', ', 'world', '! ', '42', ' 🎉', ' Привет', ' 中文', '\n\n  ']) {
      text += piece;
      const now = estimateTextTokens(text);
      expect(now).toBeGreaterThanOrEqual(previous);
      previous = now;
    }
  });
});

describe('estimatePromptTokens', () => {
  test('a two-message chat is at least what OpenAI bills for it (39 prompt tokens on gpt-4o and gpt-4)', () => {
    const request: ChatRequest = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'You are a helpful assistant that answers briefly.' },
        { role: 'user', content: 'Explain how a write-ahead log keeps a database consistent after a crash, in two sentences.' },
      ],
    };
    expect(estimatePromptTokens(request)).toBeGreaterThanOrEqual(39);
  });

  test('counts per-message overhead, content parts, images and tools', () => {
    const bare: ChatRequest = { model: 'm', messages: [{ role: 'user', content: '' }] };
    expect(estimatePromptTokens(bare)).toBe(REPLY_PRIMING_TOKENS + MESSAGE_OVERHEAD_TOKENS);
    expect(estimatePromptTokens(IMAGE_QUESTION)).toBe(REPLY_PRIMING_TOKENS + MESSAGE_OVERHEAD_TOKENS + estimateTextTokens(IMAGE_QUESTION_TEXT) + IMAGE_TOKENS);
    const withTools: ChatRequest = {
      ...bare,
      tools: [{ type: 'function', function: { name: 'lookup', description: 'Looks a word up', parameters: { type: 'object' } } }],
    };
    expect(estimatePromptTokens(withTools)).toBeGreaterThan(estimatePromptTokens(bare) + TOOLS_OVERHEAD_TOKENS);
  });

  test('tolerates the shapes a dialect may leave (null content, no messages)', () => {
    expect(estimatePromptTokens({ model: 'm', messages: [{ role: 'assistant', content: null }] })).toBe(REPLY_PRIMING_TOKENS + MESSAGE_OVERHEAD_TOKENS);
    expect(estimatePromptTokens({ model: 'm', messages: [] })).toBe(REPLY_PRIMING_TOKENS);
  });

  test("counts an embeddings request's input: a string, strings, token arrays (QA12: it counted none)", () => {
    const embed = (input: unknown): ChatRequest => ({ model: 'text-embedding-3-small', messages: [], input });
    // 'hello world': two letter runs of 5, ceil(5 / 3) = 2 tokens each; the space joins the next word.
    expect(estimateTextTokens('hello world')).toBe(4);
    expect(estimatePromptTokens(embed('hello world'))).toBe(REPLY_PRIMING_TOKENS + 4);
    expect(estimatePromptTokens(embed(['hello world', 'hello world', 'hello world']))).toBe(REPLY_PRIMING_TOKENS + 12);
    expect(estimatePromptTokens(embed([101, 2023, 2003, 102]))).toBe(REPLY_PRIMING_TOKENS + 4);
    expect(
      estimatePromptTokens(
        embed([
          [101, 2023],
          [2003, 2004, 102],
        ]),
      ),
    ).toBe(REPLY_PRIMING_TOKENS + 5);
    // QA's request: 50 inputs of 'hello world ' × 50, which the embedding models (cl100k_base) count at 5,000.
    const inputs = Array.from({ length: 50 }, () => 'hello world '.repeat(50));
    const real = inputs.reduce((sum, text) => sum + cl100kTokens(text), 0);
    expect(estimatePromptTokens(embed(inputs))).toBeGreaterThanOrEqual(real);
  });

  test('estimatedUsage puts the prompt on input and the streamed estimate on output', () => {
    const usage = estimatedUsage({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, 7);
    expect(usage).toEqual({ inputTokens: 11, outputTokens: 7, totalTokens: 18, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 });
  });

  test("estimatedUsage keeps the prompt usage the provider reported up front (a start part's promptUsage), cache included", () => {
    const observer = new StreamObserver();
    const promptUsage = {
      inputTokens: 900,
      outputTokens: 0,
      totalTokens: 900,
      cachedInputTokens: 600,
      cacheWriteInputTokens: 200,
      cacheWrite1hInputTokens: 200,
      reasoningTokens: 0,
    };
    observer.observe({ type: 'start', id: 'x', model: 'm', created: 0, promptUsage });
    const usage = estimatedUsage({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, 7, observer.promptUsage);
    expect(usage).toEqual({ ...promptUsage, outputTokens: 7, totalTokens: 907 });
  });
});

describe('StreamObserver.streamedTokens', () => {
  test('sums the deltas of every kind of generated text, each rounded up', () => {
    const observer = new StreamObserver();
    observer.observe({ type: 'start', id: 'x', model: 'm', created: 0 });
    observer.observe({ type: 'text-delta', index: 0, text: 'Hello' });
    observer.observe({ type: 'text-delta', index: 0, text: ' world' });
    observer.observe({ type: 'reasoning-delta', index: 0, text: 'thinking' });
    observer.observe({ type: 'tool-call-start', index: 0, toolIndex: 0, id: 'call_1', name: 'lookup' });
    observer.observe({ type: 'tool-call-delta', index: 0, toolIndex: 0, argumentsDelta: '{"q":1}' });
    const expected = ['Hello', ' world', 'thinking', 'lookup', '{"q":1}'].reduce((sum, text) => sum + estimateTextTokens(text), 0);
    expect(observer.streamedTokens).toBe(expected);
  });

  test('reads OpenAI chunks: content, reasoning and tool-call arguments, not roles or empty deltas', () => {
    const observer = new StreamObserver();
    const chunk = (delta: Record<string, unknown>) => ({
      type: 'openai-chunk' as const,
      raw: '',
      chunk: { id: 'c', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: null }] },
    });
    observer.observe(chunk({ role: 'assistant', content: '' }) as never);
    expect(observer.streamedTokens).toBe(0);
    observer.observe(chunk({ content: 'Hi' }) as never);
    observer.observe(chunk({ reasoning_content: 'hmm' }) as never);
    observer.observe(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }) as never);
    expect(observer.streamedTokens).toBe(estimateTextTokens('Hi') + estimateTextTokens('hmm') + estimateTextTokens('{"a":'));
  });
});
