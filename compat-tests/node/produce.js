// KafkaJS admin + producer against a broker: creates a topic, then sends `count` keyed records
// with a header, in every codec KafkaJS supports (none and gzip built in, snappy through
// kafkajs-snappy; lz4 and zstd need native codec packages, which this suite does not install).
// Usage: node produce.js <bootstrap> <topic-prefix> <count>
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

async function main () {
  const [bootstrap, prefix, countArg] = process.argv.slice(2)
  const count = Number(countArg)
  const kafka = new Kafka({ clientId: 'odradek-compat', brokers: [bootstrap], logLevel: logLevel.ERROR })
  const admin = kafka.admin()
  await admin.connect()
  const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy }
  await admin.createTopics({ topics: Object.keys(codecs).map(c => ({ topic: `${prefix}-${c}`, numPartitions: 3, replicationFactor: 1 })), waitForLeaders: true })
  const listed = await admin.listTopics()
  for (const c of Object.keys(codecs)) {
    if (!listed.includes(`${prefix}-${c}`)) throw new Error(`topic ${prefix}-${c} not listed`)
  }
  await admin.disconnect()
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (const [name, codec] of Object.entries(codecs)) {
    for (let start = 0; start < count; start += 1000) {
      const messages = []
      for (let i = start; i < Math.min(count, start + 1000); i++) {
        messages.push({ key: `k-${i}`, value: `v-${i}`, headers: { idx: String(i) } })
      }
      await producer.send({ topic: `${prefix}-${name}`, compression: codec, acks: -1, messages })
    }
    console.log(`sent ${count} ${name}`)
  }
  await producer.disconnect()
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
