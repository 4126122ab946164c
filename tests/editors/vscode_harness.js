// Loads an installed VS Code extension with a stand-in `vscode` module, activates it, and prints what
// its language client started and the server answered to `initialize`. For test_editor_vscode_package.py.
"use strict";
const Module = require("module");
const path = require("path");
const [extensionDir, serverPath, workspace] = process.argv.slice(2);

function stub(name) {
  const target = function () {};
  return new Proxy(target, {
    get(_t, prop) {
      if (prop === "then") return undefined;            // not a promise
      if (prop === Symbol.toPrimitive) return () => name;
      if (prop === "dispose") return () => {};
      if (prop === "event") return () => ({ dispose() {} });
      return stub(`${name}.${String(prop)}`);
    },
    apply() { return stub(`${name}()`); },
    construct() { return stub(`new ${name}`); },
  });
}
const settings = { "server.enabled": true, "server.path": serverPath };
const folder = { uri: { fsPath: workspace, scheme: "file", toString: () => "file://" + workspace }, name: "ws", index: 0 };
const vscode = new Proxy({
  version: "1.90.0",
  env: { appName: "harness", language: "en", machineId: "x", sessionId: "y" },
  workspace: new Proxy({
    getConfiguration: () => ({ get: (key, dflt) => (key in settings ? settings[key] : dflt) }),
    workspaceFolders: [folder],
    rootPath: workspace,
    textDocuments: [],
  }, { get: (t, p) => (p in t ? t[p] : stub(`workspace.${String(p)}`)) }),
}, { get: (t, p) => (p in t ? t[p] : stub(String(p))) });

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports: vscode };

// The extension's own copy of the client library, watched: the client it builds is the one asked below.
const lc = require(require.resolve("vscode-languageclient/node", { paths: [extensionDir] }));
let client;
const Original = lc.LanguageClient;
lc.LanguageClient = class extends Original { constructor(...args) { super(...args); client = this; } };
const extension = require(path.join(extensionDir, "extension.js"));
(async () => {
  const context = { subscriptions: [], extensionPath: extensionDir };
  await extension.activate(context);
  const result = { command: client._serverOptions.command, args: client._serverOptions.args,
                   capabilities: client.initializeResult.capabilities, serverInfo: client.initializeResult.serverInfo };
  await extension.deactivate();
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
})().catch((error) => { console.error(error && error.stack || String(error)); process.exit(1); });
