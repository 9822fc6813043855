// KafkaJS over a secured listener: TLS (`ssl`: CA, and a client certificate and key when the
// listener asks for one) and SASL (`sasl`: plain, scram-sha-256, scram-sha-512), as given in a
// JSON file of options. Creates the topic, produces `count` records, consumes them through a
// consumer group (subscribe, explicit commit), produces `count` more, and checks that a new
// member of the group gets exactly those, then that the group's committed offsets add up.
// Usage: node secure.js <bootstrap> <topic> <group> <count> <options.json>
// options.json: {"ssl": {"ca": <file>, "cert": <file>, "key": <file>}, "sasl": {...}}
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const DEADLINE_MS = 60000

function connection (options) {
  const out = {}
  if (options.ssl) {
    out.ssl = { ca: [fs.readFileSync(options.ssl.ca, 'utf8')] }
    if (options.ssl.cert) out.ssl.cert = fs.readFileSync(options.ssl.cert, 'utf8')
    if (options.ssl.key) out.ssl.key = fs.readFileSync(options.ssl.key, 'utf8')
  }
  if (options.sasl) out.sasl = options.sasl
  return out
}

async function produce (kafka, topic, from, to) {
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = from; i < to; i++) messages.push({ key: `k-${i}`, value: `v-${i}` })
  await producer.send({ topic, acks: -1, messages })
  await producer.disconnect()
}

// A new member of `group` reads until it has keys from..to-1, failing on any other key; then
// commits what it read.
async function consumeGroup (kafka, topic, group, from, to) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  const next = new Map()
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${group} saw ${seen.size} of ${to - from} within ${DEADLINE_MS} ms`)), DEADLINE_MS)
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const i = Number(message.key.toString().slice(2))
          if (i < from || i >= to) {
            clearTimeout(timer)
            reject(new Error(`${group} got k-${i}, outside ${from}..${to} (committed offsets not used?)`))
            return
          }
          if (message.value.toString() !== `v-${i}`) reject(new Error(`value of k-${i}: ${message.value}`))
          if (seen.has(i)) reject(new Error(`${group} got k-${i} twice`))
          seen.add(i)
          next.set(partition, (BigInt(message.offset) + 1n).toString())
          if (seen.size === to - from) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
    await consumer.commitOffsets([...next].map(([partition, offset]) => ({ topic, partition, offset })))
  } finally {
    await consumer.disconnect()
  }
}

async function main () {
  const [bootstrap, topic, group, countArg, optionsFile] = process.argv.slice(2)
  const count = Number(countArg)
  const options = JSON.parse(fs.readFileSync(optionsFile, 'utf8'))
  const kafka = new Kafka({
    clientId: 'odradek-secure',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 10000,
    ...connection(options)
  })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })
  await produce(kafka, topic, 0, count)
  await consumeGroup(kafka, topic, group, 0, count)
  await produce(kafka, topic, count, 2 * count)
  await consumeGroup(kafka, topic, group, count, 2 * count)
  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const committed = offsets.partitions.reduce((sum, p) => sum + Number(p.offset), 0)
  await admin.disconnect()
  if (committed !== 2 * count) throw new Error(`${group} committed ${committed} in all, not ${2 * count}`)
  console.log(`OK round-trip ${topic} ${count}`)
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
