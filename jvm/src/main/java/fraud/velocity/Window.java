package fraud.velocity;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Objects;
import java.util.Set;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * One actor's recent events (event time within the window of its newest event, at most
 * {@link #MAX_EVENTS}) and the velocity features of a new event against them.
 *
 * <p>This is the one definition of the velocity features: the stream keeps a Window per actor
 * in the state store, batch code starts every actor from an empty one. Values are computed in
 * a fixed order (window entries in arrival order, then the event itself), so sums are the same
 * bit for bit whatever the micro-batch boundaries.
 */
final class Window {
    static final int MAX_EVENTS = 64;

    /** The state-store encoding: one array per attribute, index = arrival order. */
    static final StructType SCHEMA = new StructType()
            .add("time_ms", DataTypes.createArrayType(DataTypes.LongType, false))
            .add("amount", DataTypes.createArrayType(DataTypes.DoubleType, false))
            .add("txn", DataTypes.createArrayType(DataTypes.StringType))
            .add("dest", DataTypes.createArrayType(DataTypes.StringType))
            .add("src", DataTypes.createArrayType(DataTypes.StringType))
            .add("user", DataTypes.createArrayType(DataTypes.StringType))
            .add("device", DataTypes.createArrayType(DataTypes.StringType))
            .add("ip", DataTypes.createArrayType(DataTypes.StringType))
            .add("ship", DataTypes.createArrayType(DataTypes.StringType))
            .add("hop", DataTypes.createArrayType(DataTypes.BooleanType, false));

    /** Feature columns, in output order (the Python side names them in fraud.features.VELOCITY_FEATURES). */
    static final String[] FEATURES = {
        "v_count", "v_amount_sum", "v_amount_max", "v_amount_mean", "v_secs_since_prev", "v_distinct_dest",
        "v_distinct_users", "v_distinct_devices", "v_distinct_ips", "v_distinct_ship", "v_chain_hops",
    };

    private int size;
    private long[] timeMs;
    private double[] amount;
    private String[] txn;
    private String[] dest;
    private String[] src;
    private String[] user;
    private String[] device;
    private String[] ip;
    private String[] ship;
    private boolean[] hop;
    private final Set<String> seen = new HashSet<>();

    Window() {
        allocate(8);
    }

    private void allocate(int capacity) {
        timeMs = new long[capacity];
        amount = new double[capacity];
        txn = new String[capacity];
        dest = new String[capacity];
        src = new String[capacity];
        user = new String[capacity];
        device = new String[capacity];
        ip = new String[capacity];
        ship = new String[capacity];
        hop = new boolean[capacity];
    }

    /** True when {@code transactionId} is already in the window (a redelivered event). */
    boolean contains(String transactionId) {
        return seen.contains(transactionId);
    }

    /**
     * Features of one new event (not a duplicate) against the window, then the event joins it and
     * the window is pruned. Entries later than the event (out of order) are not counted; the event
     * counts itself. Pruning after every event (not once per call) makes the result independent of
     * how an actor's events are split into micro-batches, and bounds the work per event.
     */
    double[] add(Event e, long windowMs) {
        int n = 1;
        double total = 0.0;
        double max = Double.NEGATIVE_INFINITY;
        long latest = Long.MIN_VALUE;
        int hops = 0;
        boolean isHop = false;
        Set<String> dests = new HashSet<>(), users = new HashSet<>(), devices = new HashSet<>(),
                ips = new HashSet<>(), ships = new HashSet<>();
        for (int j = 0; j < size; j++) {
            long t = timeMs[j];
            if (t < e.timeMs - windowMs || t > e.timeMs) {
                continue;
            }
            n++;
            total += amount[j];
            max = Math.max(max, amount[j]);
            latest = Math.max(latest, t);
            if (hop[j]) {
                hops++;
            }
            isHop |= e.src != null && e.src.equals(dest[j]);
            addIfPresent(dests, dest[j]);
            addIfPresent(users, user[j]);
            addIfPresent(devices, device[j]);
            addIfPresent(ips, ip[j]);
            addIfPresent(ships, ship[j]);
        }
        total += e.amount;
        max = Math.max(max, e.amount);
        double[] features = {
            n, total, max, total / n, latest == Long.MIN_VALUE ? -1.0 : (e.timeMs - latest) / 1000.0,
            distinct(dests, e.dest), distinct(users, e.user), distinct(devices, e.device), distinct(ips, e.ip),
            distinct(ships, e.ship), hops + (isHop ? 1 : 0),
        };
        append(e, isHop);
        prune(windowMs);
        return features;
    }

    private static void addIfPresent(Set<String> values, String value) {
        if (value != null) {
            values.add(value);
        }
    }

    private static double distinct(Set<String> values, String mine) {
        addIfPresent(values, mine);
        return values.size();
    }

    private void append(Event e, boolean isHop) {
        if (size == timeMs.length) {
            grow(size * 2);
        }
        timeMs[size] = e.timeMs;
        amount[size] = e.amount;
        txn[size] = e.transactionId;
        dest[size] = e.dest;
        src[size] = e.src;
        user[size] = e.user;
        device[size] = e.device;
        ip[size] = e.ip;
        ship[size] = e.ship;
        hop[size] = isHop;
        seen.add(e.transactionId);
        size++;
    }

    private void grow(int capacity) {
        timeMs = Arrays.copyOf(timeMs, capacity);
        amount = Arrays.copyOf(amount, capacity);
        txn = Arrays.copyOf(txn, capacity);
        dest = Arrays.copyOf(dest, capacity);
        src = Arrays.copyOf(src, capacity);
        user = Arrays.copyOf(user, capacity);
        device = Arrays.copyOf(device, capacity);
        ip = Arrays.copyOf(ip, capacity);
        ship = Arrays.copyOf(ship, capacity);
        hop = Arrays.copyOf(hop, capacity);
    }

    /** Keep what a later event could still count: within the window of the newest entry, the last MAX_EVENTS. */
    private void prune(long windowMs) {
        long newest = Long.MIN_VALUE;
        int inWindow = 0;
        for (int j = 0; j < size; j++) {
            newest = Math.max(newest, timeMs[j]);
        }
        for (int j = 0; j < size; j++) {
            if (timeMs[j] >= newest - windowMs) {
                inWindow++;
            }
        }
        int skip = Math.max(0, inWindow - MAX_EVENTS);  // the oldest arrivals beyond the cap
        int out = 0;
        for (int j = 0; j < size; j++) {
            boolean keep = timeMs[j] >= newest - windowMs && skip-- <= 0;
            if (!keep) {
                seen.remove(txn[j]);
                continue;
            }
            timeMs[out] = timeMs[j];
            amount[out] = amount[j];
            txn[out] = txn[j];
            dest[out] = dest[j];
            src[out] = src[j];
            user[out] = user[j];
            device[out] = device[j];
            ip[out] = ip[j];
            ship[out] = ship[j];
            hop[out] = hop[j];
            out++;
        }
        for (int j = out; j < size; j++) {  // release references past the end
            txn[j] = dest[j] = src[j] = user[j] = device[j] = ip[j] = ship[j] = null;
        }
        size = out;
    }

    Row toRow() {
        return RowFactory.create(
                Arrays.copyOf(timeMs, size), Arrays.copyOf(amount, size), Arrays.copyOf(txn, size),
                Arrays.copyOf(dest, size), Arrays.copyOf(src, size), Arrays.copyOf(user, size),
                Arrays.copyOf(device, size), Arrays.copyOf(ip, size), Arrays.copyOf(ship, size),
                Arrays.copyOf(hop, size));
    }

    static Window fromRow(Row row) {
        Window w = new Window();
        java.util.List<Long> times = row.getList(0);
        int n = times.size();
        w.allocate(Math.max(8, n * 2));
        java.util.List<Double> amounts = row.getList(1);
        java.util.List<Boolean> hops = row.getList(9);
        for (int j = 0; j < n; j++) {
            w.timeMs[j] = times.get(j);
            w.amount[j] = amounts.get(j);
            w.hop[j] = hops.get(j);
        }
        copyStrings(row, 2, w.txn, n);
        copyStrings(row, 3, w.dest, n);
        copyStrings(row, 4, w.src, n);
        copyStrings(row, 5, w.user, n);
        copyStrings(row, 6, w.device, n);
        copyStrings(row, 7, w.ip, n);
        copyStrings(row, 8, w.ship, n);
        w.size = n;
        w.seen.addAll(Arrays.asList(w.txn).subList(0, n));
        return w;
    }

    private static void copyStrings(Row row, int field, String[] into, int n) {
        java.util.List<String> values = row.getList(field);
        for (int j = 0; j < n; j++) {
            into[j] = values.get(j);
        }
    }

    int size() {
        return size;
    }

    /** What the features need of one event. */
    static final class Event {
        final String transactionId;
        final long timeMs;
        final double amount;
        final String dest, src, user, device, ip, ship;

        Event(String transactionId, long timeMs, double amount, String dest, String src, String user,
              String device, String ip, String ship) {
            this.transactionId = Objects.requireNonNull(transactionId, "transaction id");
            this.timeMs = timeMs;
            this.amount = amount;
            this.dest = dest;
            this.src = src;
            this.user = user;
            this.device = device;
            this.ip = ip;
            this.ship = ship;
        }
    }
}
