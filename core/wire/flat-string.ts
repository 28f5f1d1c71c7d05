// A string built by concatenation or a template literal is, in JavaScriptCore, a rope: a tree of its
// pieces, laid out flat only when something reads its characters. A rope kept and reused as a piece of
// every stream frame (a cached prefix) is walked again each time a frame is encoded to bytes: about
// 60 ns per frame on a 100-character piece (bench/responses.ts). Reading one character lays it out once.

/** The same text, laid out flat now (for strings cached and reused in every frame). */
export function flatString(text: string): string {
  text.charCodeAt(0);
  return text;
}
