/**
 * Where each value of a JSON text starts, by field path (`plugins[1].ipam.type`), so that configuration
 * errors can name a line. Assumes the text already parsed with JSON.parse (no error recovery).
 */

/** Field path → offset of the value's first character. The root is "". */
export function jsonValueOffsets(text: string): Map<string, number> {
  const offsets = new Map<string, number>();
  let i = 0;

  const skipWs = () => {
    while (i < text.length && " \t\n\r".includes(text[i] ?? "")) i++;
  };
  const readString = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++; // closing quote
    return JSON.parse(text.slice(start, i)) as string;
  };
  const join = (path: string, key: string | number) =>
    typeof key === "number" ? `${path}[${key}]` : path === "" ? key : `${path}.${key}`;

  const value = (path: string): void => {
    skipWs();
    offsets.set(path, i);
    const c = text[i];
    if (c === "{") {
      i++;
      skipWs();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        skipWs();
        const key = readString();
        skipWs();
        i++; // colon
        value(join(path, key));
        skipWs();
        if (text[i++] === "}") return;
      }
    }
    if (c === "[") {
      i++;
      skipWs();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value(join(path, n));
        skipWs();
        if (text[i++] === "]") return;
      }
    }
    if (c === '"') {
      readString();
      return;
    }
    while (i < text.length && !",]} \t\n\r".includes(text[i] ?? "")) i++;
  };

  value("");
  return offsets;
}

/** 1-based line of an offset. */
export function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
