// KafkaJS group consumer: reads `count` records of a topic through a consumer group and prints
// how many it saw, then commits and disconnects. Usage: node consume.js <bootstrap> <topic> <count>
const { Kafka, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const { CompressionTypes, CompressionCodecs } = require('kafkajs')
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

async function main () {
  const [bootstrap, topic, countArg] = process.argv.slice(2)
  const count = Number(countArg)
  const kafka = new Kafka({ clientId: 'odradek-compat', brokers: [bootstrap], logLevel: logLevel.ERROR })
  const consumer = kafka.consumer({ groupId: `kafkajs-${topic}`, sessionTimeout: 10000, heartbeatInterval: 500 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = new Set()
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`saw ${seen.size} of ${count} within 60 s`)), 60000)
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.add(message.key.toString())
        if (seen.size >= count) { clearTimeout(timer); resolve() }
      }
    })
  })
  await done
  await consumer.disconnect()
  console.log(`consumed ${seen.size}`)
}

main().then(() => process.exit(0), err => { console.error(err); process.exit(1) })
