// Validates ServiceMonitor and PrometheusRule objects (a JSON array in the file named by the
// second argument) against the Prometheus Operator's monitoring.coreos.com/v1 schemas, as
// compiled by @kubernetes-models/prometheus-operator (installed under the first argument, the
// check tools' npm folder). Prints one line per problem; exits 1 when any object is invalid.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, objectsFile] = process.argv.slice(2);
const modelsDir = join(npmDir, "node_modules", "@kubernetes-models", "prometheus-operator", "monitoring.coreos.com", "v1");
const load = async (kind) => (await import(pathToFileURL(join(modelsDir, `${kind}.js`)).href))[kind];
const models = {
  ServiceMonitor: await load("ServiceMonitor"),
  PrometheusRule: await load("PrometheusRule"),
};

let failed = 0;
for (const { source, object } of JSON.parse(readFileSync(objectsFile, "utf8"))) {
  const name = `${source}: ${object.kind}/${object.metadata?.name}`;
  const Model = models[object.kind];
  if (object.apiVersion !== "monitoring.coreos.com/v1" || !Model) {
    console.log(`FAIL ${name}: not a monitoring.coreos.com/v1 ServiceMonitor or PrometheusRule`);
    failed++;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`ok   ${name} matches the monitoring.coreos.com/v1 schema`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
