import java.io.File;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.FileLogInputStream.FileChannelRecordBatch;
import org.apache.kafka.common.record.FileRecords;
import org.apache.kafka.common.record.Record;

/**
 * Reads log segments with Kafka's own record classes (what kafka-dump-log.sh and the broker use)
 * and prints one line per batch and per record. Any CRC or format error is an exception and a
 * non-zero exit. With `--compacted` first, offsets may have gaps (as a log cleaner leaves them),
 * but must still increase and stay within their batch, and each batch line also shows the
 * producer id and the delete horizon.
 */
public class SegmentCheck {
    static String str(java.nio.ByteBuffer b) {
        if (b == null) return "null";
        byte[] bytes = new byte[b.remaining()];
        b.duplicate().get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        boolean compacted = args.length > 0 && args[0].equals("--compacted");
        for (String path : java.util.Arrays.copyOfRange(args, compacted ? 1 : 0, args.length)) {
            try (FileRecords records = FileRecords.open(new File(path))) {
                long expectedNext = -1;
                for (FileChannelRecordBatch batch : records.batches()) {
                    batch.ensureValid();
                    if (expectedNext >= 0 && (compacted ? batch.baseOffset() < expectedNext : batch.baseOffset() != expectedNext))
                        throw new IllegalStateException("gap before batch at " + batch.baseOffset());
                    System.out.println("batch baseOffset=" + batch.baseOffset() + " lastOffset=" + batch.lastOffset()
                        + " count=" + batch.countOrNull() + " magic=" + batch.magic()
                        + " codec=" + batch.compressionType().name + " timestampType=" + batch.timestampType()
                        + " maxTimestamp=" + batch.maxTimestamp() + " crc=" + batch.checksum()
                        + (compacted ? " producerId=" + batch.producerId() + " control=" + batch.isControlBatch()
                            + " deleteHorizon=" + batch.deleteHorizonMs().orElse(-1L) : "")
                        + " valid=" + batch.isValid());
                    long offset = batch.baseOffset();
                    for (Record r : batch) {
                        r.ensureValid();
                        if (compacted ? r.offset() < offset || r.offset() > batch.lastOffset() : r.offset() != offset)
                            throw new IllegalStateException("record offset " + r.offset() + " expected " + offset);
                        offset = r.offset() + 1;
                        StringBuilder h = new StringBuilder();
                        for (Header header : r.headers()) {
                            if (h.length() > 0) h.append(',');
                            h.append(header.key()).append('=')
                                .append(header.value() == null ? "null" : new String(header.value(), StandardCharsets.UTF_8));
                        }
                        System.out.println("record offset=" + r.offset() + " timestamp=" + r.timestamp()
                            + " key=" + str(r.key()) + " value=" + str(r.value()) + " headers=[" + h + "]");
                    }
                    if (!compacted && offset != batch.lastOffset() + 1)
                        throw new IllegalStateException("batch records end at " + offset);
                    expectedNext = batch.lastOffset() + 1;
                }
            }
        }
    }
}
