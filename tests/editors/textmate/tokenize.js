// Tokenizes files with VS Code's own TextMate engine (vscode-textmate over the
// oniguruma WebAssembly build), the way the editor highlights them.
//
//   node tokenize.js GRAMMAR.json FILE...
//
// Prints one JSON document: {"FILE": [[{"text": "...", "scopes": [...]}, ...], ...]},
// a list of tokens for each line of each file.
"use strict";

const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  if (!grammarPath || files.length === 0) {
    process.stderr.write("usage: node tokenize.js GRAMMAR.json FILE...\n");
    process.exit(2);
  }
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const onigLib = Promise.resolve({
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (text) => new oniguruma.OnigString(text),
  });
  const grammarText = fs.readFileSync(grammarPath, "utf8");
  const scopeName = JSON.parse(grammarText).scopeName;
  const registry = new vsctm.Registry({
    onigLib,
    loadGrammar: async (name) => (name === scopeName ? vsctm.parseRawGrammar(grammarText, grammarPath) : null),
  });
  const grammar = await registry.loadGrammar(scopeName);
  if (!grammar) throw new Error(`cannot load grammar ${grammarPath}`);

  const out = {};
  for (const file of files) {
    let ruleStack = vsctm.INITIAL;
    const lines = fs.readFileSync(file, "utf8").split(/\r?\n/);
    out[file] = lines.map((line) => {
      const result = grammar.tokenizeLine(line, ruleStack);
      ruleStack = result.ruleStack;
      return result.tokens
        .map((t) => ({ text: line.substring(t.startIndex, t.endIndex), scopes: t.scopes }))
        .filter((t) => t.text.length > 0);
    });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
