// Validates deploy/kubernetes.yaml against the Kubernetes API schemas
// (kubernetes-models) and lints the Dockerfile (dockerfilelint).
//   npm ci --prefix deploy/check && node deploy/check/check.mjs
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const require = createRequire(import.meta.url);
let failed = false;

const kinds = {
  "apps/v1 Deployment": "kubernetes-models/apps/v1/Deployment",
  "v1 Service": "kubernetes-models/v1/Service",
  "policy/v1 PodDisruptionBudget": "kubernetes-models/policy/v1/PodDisruptionBudget",
};
const manifest = join(root, "deploy", "kubernetes.yaml");
for (const doc of parseAllDocuments(readFileSync(manifest, "utf8"))) {
  if (doc.errors.length) {
    console.error(`${manifest}: ${doc.errors.join("; ")}`);
    failed = true;
    continue;
  }
  const obj = doc.toJS();
  const key = `${obj.apiVersion} ${obj.kind}`;
  if (!kinds[key]) {
    console.error(`${manifest}: no schema for ${key}: add it to check.mjs`);
    failed = true;
    continue;
  }
  const mod = await import(kinds[key] + ".js").catch(() => import(kinds[key]));
  const Model = mod[obj.kind] || mod.default;
  try {
    new Model(obj).validate();
    console.log(`ok ${key} ${obj.metadata.name}`);
  } catch (e) {
    console.error(`${manifest}: ${key} ${obj.metadata?.name}: ${e.message}`);
    failed = true;
  }
}

const lint = require("dockerfilelint");
const dockerfile = join(root, "Dockerfile");
const issues = lint.run(root, readFileSync(dockerfile, "utf8"));
for (const i of issues) {
  console.error(`${dockerfile}:${i.line}: ${i.category}: ${i.title}: ${i.description}`);
  failed = true;
}
if (!issues.length) console.log("ok Dockerfile");
process.exit(failed ? 1 : 0);
