/**
 * A strict RFC 5424 parser for tests: every header field is checked
 * against the ABNF of section 6, structured data included.
 */
export interface Parsed5424 {
  pri: number;
  time: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Array<{ id: string; params: Record<string, string> }>;
  message: string;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

export function parse5424(text: string): Parsed5424 {
  const header = /^<(\d{1,3})>1 (\S+) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) /.exec(text);
  if (header === null) throw new Error(`not an RFC 5424 header: ${text.slice(0, 80)}`);
  const pri = Number(header[1]);
  if (pri > 191) throw new Error(`PRI ${pri} is above 191`);
  if (header[2] !== "-" && !TIMESTAMP.test(header[2])) throw new Error(`invalid TIMESTAMP ${header[2]}`);
  let rest = text.slice(header[0].length);
  const sd: Parsed5424["sd"] = [];
  if (rest.startsWith("-")) {
    rest = rest.slice(1);
  } else {
    while (rest.startsWith("[")) {
      const id = /^\[([^= \]"]{1,32})/.exec(rest);
      if (id === null) throw new Error("invalid SD-ID");
      rest = rest.slice(id[0].length);
      const params: Record<string, string> = {};
      for (;;) {
        if (rest.startsWith("]")) {
          rest = rest.slice(1);
          break;
        }
        const param = /^ ([^= \]"]{1,32})="((?:[^"\\\]]|\\["\\\]]|\\)*)"/.exec(rest);
        if (param === null) throw new Error(`invalid SD-PARAM at ${rest.slice(0, 40)}`);
        params[param[1]] = param[2].replace(/\\(["\\\]])/g, "$1");
        rest = rest.slice(param[0].length);
      }
      sd.push({ id: id[1], params });
    }
    if (sd.length === 0) throw new Error("missing STRUCTURED-DATA");
  }
  if (rest !== "" && !rest.startsWith(" ")) throw new Error("MSG must follow a space");
  return { pri, time: header[2], hostname: header[3], appName: header[4], procId: header[5], msgId: header[6], sd, message: rest.slice(1) };
}
