package fraud.velocity;

import static org.apache.spark.sql.functions.col;

import java.io.Serializable;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;

import org.apache.spark.api.java.function.FlatMapGroupsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

import scala.jdk.javaapi.CollectionConverters;

/**
 * Velocity features over a frame of parsed records, grouped by actor and by the attributes fraud
 * rings share: in a stream with each key's window in the state store, or in batch over whole
 * histories. Both run {@link #process} on a key's new records, so they give the same values for the
 * same events.
 *
 * <p>Input columns (built by {@code fraud.features}): {@value #KEY}, {@code reasons} (array of
 * rejection codes, empty when valid), {@code topic}, {@code partition}, {@code offset}, and the
 * inputs {@code vin_txn, vin_time, vin_amount, vin_dest, vin_src, vin_user, vin_device, vin_ip,
 * vin_ship, vin_actor, vin_kind}. A record comes once as itself, keyed by its actor ({@code vin_kind}
 * null; a rejected record keyed "", it touches no state), and a valid one once more per shared
 * attribute it has ({@code vin_kind} one of {@link SharedWindow#KINDS}, keyed {@link #SHARED_PREFIX} +
 * kind + {@link #SHARED_PREFIX} + value, its other columns null): a valid record's actor holds no
 * control character (the contract), so no actor key starts with the prefix.
 *
 * <p>Output: every other input column unchanged but {@code reasons} (a redelivered transaction id
 * gets {@code "duplicate"}), then {@link Window#FEATURES} (null for rejected records), then
 * {@link SharedWindow#FEATURES}, then {@value #KIND}. A record's own row has its actor features and
 * null shared ones; an attribute row has its kind's four shared features and its kind: the caller
 * merges them into the record's row by Kafka position. Valid records of one key are taken in
 * event-time order (ties by Kafka position); rejected records pass through without touching state.
 */
public final class Velocity implements Serializable {
    private static final long serialVersionUID = 1L;
    public static final String KEY = "velocity_key";
    public static final String KIND = "velocity_kind";
    public static final String SHARED_PREFIX = "\u0001";
    private static final String[] INPUTS = {
        "vin_txn", "vin_time", "vin_amount", "vin_dest", "vin_src", "vin_user", "vin_device", "vin_ip", "vin_ship",
        "vin_actor", "vin_kind",
    };
    static final String DUPLICATE = "duplicate";

    private final int[] kept;       // input field index of each pass-through output column
    private final int reasons, topic, partition, offset;
    private final int[] inputs;     // input field index of each INPUTS entry
    private final StructType inputSchema, outputSchema;
    private final long windowMs;

    private Velocity(StructType input, long windowS) {
        inputSchema = input;
        windowMs = windowS * 1000;
        List<Integer> keep = new ArrayList<>();
        List<StructField> out = new ArrayList<>();
        for (int i = 0; i < input.fields().length; i++) {
            StructField f = input.fields()[i];
            if (!f.name().equals(KEY) && !f.name().startsWith("vin_")) {
                keep.add(i);
                out.add(f);
            }
        }
        for (String name : featureNames()) {
            out.add(DataTypes.createStructField(name, DataTypes.DoubleType, true));
        }
        out.add(DataTypes.createStructField(KIND, DataTypes.StringType, true));
        kept = keep.stream().mapToInt(Integer::intValue).toArray();
        outputSchema = DataTypes.createStructType(out);
        reasons = input.fieldIndex("reasons");
        topic = input.fieldIndex("topic");
        partition = input.fieldIndex("partition");
        offset = input.fieldIndex("offset");
        inputs = Arrays.stream(INPUTS).mapToInt(input::fieldIndex).toArray();
    }

    /** Streaming: actor windows in the state store (RocksDB), expired {@code ttlS} after an actor's last update. */
    public static Dataset<Row> stream(Dataset<Row> parsed, long windowS, long ttlS) {
        Velocity velocity = new Velocity(parsed.schema(), windowS);
        return parsed.groupBy(col(KEY)).as(Encoders.STRING(), Encoders.row(velocity.inputSchema))
                .transformWithState(new VelocityProcessor(velocity, ttlS * 1000), TimeMode.ProcessingTime(),
                        OutputMode.Append(), Encoders.row(velocity.outputSchema));
    }

    /** Batch: every actor's whole history in one pass from an empty window. */
    public static Dataset<Row> batch(Dataset<Row> parsed, long windowS) {
        Velocity velocity = new Velocity(parsed.schema(), windowS);
        FlatMapGroupsFunction<String, Row, Row> run = (key, rows) -> (isShared(key)
                ? velocity.processShared(rows, new SharedWindow()) : velocity.process(rows, new Window())).rows.iterator();
        return parsed.groupBy(col(KEY)).as(Encoders.STRING(), Encoders.row(velocity.inputSchema))
                .flatMapGroups(run, Encoders.row(velocity.outputSchema));
    }

    /** The feature column names, in output order: the actor's, then the shared attributes'. */
    public static String[] featureNames() {
        String[] names = Arrays.copyOf(Window.FEATURES, Window.FEATURES.length + SharedWindow.FEATURES.length);
        System.arraycopy(SharedWindow.FEATURES, 0, names, Window.FEATURES.length, SharedWindow.FEATURES.length);
        return names;
    }

    private static final int FEATURE_COUNT = Window.FEATURES.length + SharedWindow.FEATURES.length;

    static boolean isShared(String key) {
        return key.startsWith(SHARED_PREFIX);
    }

    static final class Result {
        final List<Row> rows;
        final boolean windowChanged;

        Result(List<Row> rows, boolean windowChanged) {
            this.rows = rows;
            this.windowChanged = windowChanged;
        }
    }

    /** One actor's new records against its window (updated in place). */
    Result process(Iterator<Row> records, Window window) {
        List<Row> all = new ArrayList<>();
        List<Row> valid = new ArrayList<>();
        while (records.hasNext()) {
            Row r = records.next();
            all.add(r);
            if (r.getList(reasons).isEmpty()) {
                valid.add(r);
            }
        }
        valid.sort(arrival());
        java.util.Map<Row, double[]> features = new java.util.IdentityHashMap<>();
        java.util.Set<Row> duplicates = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Row r : valid) {
            Window.Event e = event(r);
            if (window.contains(e.transactionId)) {
                duplicates.add(r);
            } else {
                features.put(r, window.add(e, windowMs));
            }
        }
        boolean changed = !features.isEmpty();
        List<Row> out = new ArrayList<>(all.size());
        for (Row r : all) {
            out.add(output(r, features.get(r), duplicates.contains(r)));
        }
        return new Result(out, changed);
    }

    /** One shared value's new records (all valid, all of one kind) against its window (updated in place). */
    Result processShared(Iterator<Row> records, SharedWindow window) {
        List<Row> rows = new ArrayList<>();
        records.forEachRemaining(rows::add);
        rows.sort(arrival());
        List<Row> out = new ArrayList<>(rows.size());
        for (Row r : rows) {
            // A transaction id is one actor's: another account may send the same id (a ring could, to
            // hide), so the window knows an event by actor and id.
            String id = r.getString(inputs[9]) + SHARED_PREFIX + r.getString(inputs[0]);
            if (window.contains(id)) {
                continue;  // a redelivery: the record's own row says so
            }
            double[] measures = window.add(id, millis(r.get(inputs[1])), r.getDouble(inputs[2]),
                    r.getString(inputs[9]), r.getString(inputs[5]), windowMs);
            String kind = r.getString(inputs[10]);
            Object[] values = new Object[kept.length + FEATURE_COUNT + 1];
            for (int k = 0; k < kept.length; k++) {
                values[k] = r.get(kept[k]);
            }
            int first = kept.length + Window.FEATURES.length + SharedWindow.kindIndex(kind) * measures.length;
            for (int m = 0; m < measures.length; m++) {
                values[first + m] = measures[m];
            }
            values[values.length - 1] = kind;
            out.add(RowFactory.create(values));
        }
        return new Result(out, !out.isEmpty());
    }

    /** Event time, then Kafka position: the order a key's records are taken in, in batch as in the stream. */
    private Comparator<Row> arrival() {
        return Comparator.comparingLong((Row r) -> millis(r.get(inputs[1])))
                .thenComparing(r -> r.getString(topic))
                .thenComparingInt(r -> r.getInt(partition))
                .thenComparingLong(r -> r.getLong(offset));
    }

    private Window.Event event(Row r) {
        return new Window.Event(r.getString(inputs[0]), millis(r.get(inputs[1])), r.getDouble(inputs[2]),
                r.getString(inputs[3]), r.getString(inputs[4]), r.getString(inputs[5]), r.getString(inputs[6]),
                r.getString(inputs[7]), r.getString(inputs[8]));
    }

    private Row output(Row r, double[] features, boolean duplicate) {
        Object[] values = new Object[kept.length + FEATURE_COUNT + 1];
        for (int k = 0; k < kept.length; k++) {
            values[k] = kept[k] == reasons && duplicate ? withDuplicate(r.getList(reasons)) : r.get(kept[k]);
        }
        if (features != null) {
            for (int f = 0; f < features.length; f++) {
                values[kept.length + f] = features[f];
            }
        }
        return RowFactory.create(values);
    }

    private static Object withDuplicate(List<String> reasons) {
        List<String> more = new ArrayList<>(reasons);
        more.add(DUPLICATE);
        return CollectionConverters.asScala(more).toSeq();
    }

    /** Event time in epoch milliseconds (floor), from either external timestamp type. */
    static long millis(Object value) {
        if (value instanceof Timestamp) {
            return ((Timestamp) value).getTime();
        }
        return ((Instant) value).toEpochMilli();
    }
}
