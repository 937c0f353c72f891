// Sends COUNT track calls through @rudderstack/rudder-sdk-node with its default options (gzip on, flushAt 20),
// then prints {"sent": n, "failed": n} once every call's callback has run.
// Usage: node rudder_node.js <data plane URL> <write key> <count>
const Analytics = require("@rudderstack/rudder-sdk-node");

const [dataPlaneUrl, writeKey, count] = process.argv.slice(2);
const client = new Analytics(writeKey, { dataPlaneUrl, logLevel: "error" });
let sent = 0;
let failed = 0;
const calls = [];
for (let i = 0; i < Number(count); i += 1) {
  calls.push(
    new Promise((resolve) => {
      client.track(
        {
          userId: `u-${i % 17}`,
          event: "Product Viewed",
          properties: { sku: `SKU-${i % 5}`, price: 9.5, channel: "app" },
        },
        (err) => {
          if (err) failed += 1;
          else sent += 1;
          resolve();
        },
      );
    }),
  );
}
client.flush();
Promise.all(calls).then(() => {
  console.log(JSON.stringify({ sent, failed }));
  process.exit(0);
});
