// The SQL of a data answer: shown once, under the tool call that ran it, formatted and copyable.

import { copyButton, el } from "./dom.js";

// Clauses that start a new line, longest first so "GROUP BY" wins over "BY".
const CLAUSES = [
  "LEFT OUTER JOIN", "RIGHT OUTER JOIN", "FULL OUTER JOIN", "UNION ALL",
  "GROUP BY", "ORDER BY", "LEFT JOIN", "RIGHT JOIN", "INNER JOIN", "CROSS JOIN", "FULL JOIN",
  "SELECT", "FROM", "WHERE", "HAVING", "LIMIT", "OFFSET", "JOIN", "UNION", "WITH",
];
const INDENTED = new Set(["AND", "OR"]);
// Quoted strings and identifiers stay whole; words and everything else are tokens.
const TOKENS = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\s+|[A-Za-z_][A-Za-z0-9_]*|./gs;

/**
 * Put each clause of `sql` on its own line (and AND/OR of a WHERE indented), leaving quoted text
 * and every other character as they were: a display aid, never a rewrite.
 */
export function formatSql(sql) {
  const tokens = String(sql).match(TOKENS) || [];
  const out = [];
  let depth = 0;
  let inWhere = false;
  let between = false; // the AND of "BETWEEN a AND b" stays on its line
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i];
    if (token === "(") depth += 1;
    if (token === ")") depth = Math.max(0, depth - 1);
    if (/^\s+$/.test(token)) {
      const last = out[out.length - 1];
      if (last !== undefined && last !== " " && !last.startsWith("\n")) out.push(" ");
      continue;
    }
    const clause = depth === 0 ? clauseAt(tokens, i) : null;
    if (clause) {
      if (out.length) {
        while (out.length && out[out.length - 1] === " ") out.pop();
        out.push("\n");
      }
      inWhere = clause.name === "WHERE" || clause.name === "HAVING";
      out.push(tokens.slice(i, clause.end).join("").replace(/\s+/g, " "));
      i = clause.end - 1;
      continue;
    }
    const upper = token.toUpperCase();
    if (upper === "BETWEEN") between = true;
    else if (between && upper === "AND") {
      between = false;
      out.push(token);
      continue;
    }
    if (depth === 0 && inWhere && INDENTED.has(upper)) {
      while (out.length && out[out.length - 1] === " ") out.pop();
      out.push("\n  ", token);
      continue;
    }
    out.push(token);
  }
  return out.join("").trim();
}

function clauseAt(tokens, i) {
  for (const name of CLAUSES) {
    const words = name.split(" ");
    let j = i;
    let matched = true;
    for (const [k, word] of words.entries()) {
      if (k > 0) {
        if (!/^\s+$/.test(tokens[j] || "")) {
          matched = false;
          break;
        }
        j += 1;
      }
      if ((tokens[j] || "").toUpperCase() !== word) {
        matched = false;
        break;
      }
      j += 1;
    }
    if (matched) return { name, end: j };
  }
  return null;
}

/** The collapsible SQL of one tool call: "Show SQL", the formatted statement and a copy button. */
export function sqlBlock(sql) {
  const formatted = formatSql(sql);
  return el(
    "details",
    { class: "sql" },
    el("summary", { text: "Show SQL" }),
    el("div", { class: "sql-box" },
      el("pre", {}, el("code", { text: formatted })),
      copyButton(() => formatted, { what: "SQL" })),
  );
}
