// The audlang extension's client: starts `audlang lsp` (the language server,
// on stdio) when the `audlang` command is on the PATH, or at the path set in
// `audlang.server.path`. Without it, highlighting and snippets still work.
"use strict";

const fs = require("fs");
const path = require("path");
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function findExecutable(command) {
  const candidates = [];
  const extensions = process.platform === "win32"
    ? (process.env.PATHEXT || ".EXE;.CMD;.BAT").split(";").concat([""])
    : [""];
  if (command.includes("/") || command.includes("\\")) {
    candidates.push(command);
  } else {
    for (const dir of (process.env.PATH || "").split(path.delimiter)) {
      if (dir) candidates.push(path.join(dir, command));
    }
  }
  for (const candidate of candidates) {
    for (const extension of extensions) {
      const file = candidate + extension;
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch (error) {
        // not there; try the next one
      }
    }
  }
  return undefined;
}

async function start(context) {
  const config = vscode.workspace.getConfiguration("audlang");
  if (!config.get("server.enabled", true)) return;
  const command = config.get("server.path") || "audlang";
  const executable = findExecutable(command);
  if (!executable) {
    vscode.window.showInformationMessage(
      `audlang: \`${command}\` is not on the PATH, so there are no diagnostics, completion or formatting. ` +
        "Install audlang (pip install audlang) or set audlang.server.path."
    );
    return;
  }
  const serverOptions = { command: executable, args: ["lsp"], options: { env: process.env } };
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "audlang" },
      { scheme: "untitled", language: "audlang" },
    ],
    synchronize: {
      // Files created, changed or deleted outside the editor are checked again.
      fileEvents: [
        vscode.workspace.createFileSystemWatcher("**/*.aud"),
        vscode.workspace.createFileSystemWatcher("**/audlang.toml"),
        vscode.workspace.createFileSystemWatcher("**/*.csv"),
      ],
    },
  };
  client = new LanguageClient("audlang", "audlang language server", serverOptions, clientOptions);
  await client.start();
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("audlang.restartServer", async () => {
      await stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("audlang.server")) {
        await stop();
        await start(context);
      }
    })
  );
  await start(context);
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
