package fraud.velocity;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * The recent events at one value of an attribute that fraud rings share (a shipping address, an IP
 * address, a device, a destination account), whoever the actor: the same window rules as
 * {@link Window} (event time within the window of the newest entry, at most {@link Window#MAX_EVENTS},
 * pruned after every event, values in arrival order then the event itself), other features.
 *
 * <p>Per event: the events at this value in the window (itself included), the distinct actors and
 * user ids behind them, and their amount in US dollars. One account behind many user ids shows in
 * the actor's {@link Window}; many accounts behind one address show here.
 */
final class SharedWindow {
    /** Attribute kinds, in output order; {@code fraud.features} builds one input row per kind present. */
    static final String[] KINDS = {"ship", "ip", "device", "dest"};
    static final String[] MEASURES = {"events", "actors", "users", "amount"};

    /** s_<kind>_<measure>, kind-major: the Python side names them in fraud.schemas.SHARED_FEATURES. */
    static final String[] FEATURES = Arrays.stream(KINDS)
            .flatMap(k -> Arrays.stream(MEASURES).map(m -> "s_" + k + "_" + m)).toArray(String[]::new);

    private int size;
    private long[] timeMs = new long[8];
    private double[] amount = new double[8];
    private String[] txn = new String[8];
    private String[] actor = new String[8];
    private String[] user = new String[8];
    private final Set<String> seen = new HashSet<>();

    static int kindIndex(String kind) {
        int k = Arrays.asList(KINDS).indexOf(kind);
        if (k < 0) {
            throw new IllegalArgumentException("unknown attribute kind " + kind);
        }
        return k;
    }

    boolean contains(String transactionId) {
        return seen.contains(transactionId);
    }

    /** The event's measures against the window (entries later than it not counted), then it joins. */
    double[] add(String transactionId, long eventMs, double eventAmount, String eventActor, String eventUser,
                 long windowMs) {
        int n = 1;
        double total = 0.0;
        Set<String> actors = new HashSet<>(), users = new HashSet<>();
        for (int j = 0; j < size; j++) {
            if (timeMs[j] < eventMs - windowMs || timeMs[j] > eventMs) {
                continue;
            }
            n++;
            total += amount[j];
            addIfPresent(actors, actor[j]);
            addIfPresent(users, user[j]);
        }
        total += eventAmount;
        addIfPresent(actors, eventActor);
        addIfPresent(users, eventUser);
        double[] measures = {n, actors.size(), users.size(), total};
        if (size == timeMs.length) {
            int capacity = size * 2;
            timeMs = Arrays.copyOf(timeMs, capacity);
            amount = Arrays.copyOf(amount, capacity);
            txn = Arrays.copyOf(txn, capacity);
            actor = Arrays.copyOf(actor, capacity);
            user = Arrays.copyOf(user, capacity);
        }
        timeMs[size] = eventMs;
        amount[size] = eventAmount;
        txn[size] = transactionId;
        actor[size] = eventActor;
        user[size] = eventUser;
        seen.add(transactionId);
        size++;
        prune(windowMs);
        return measures;
    }

    private static void addIfPresent(Set<String> values, String value) {
        if (value != null) {
            values.add(value);
        }
    }

    private void prune(long windowMs) {
        long newest = Long.MIN_VALUE;
        for (int j = 0; j < size; j++) {
            newest = Math.max(newest, timeMs[j]);
        }
        int inWindow = 0;
        for (int j = 0; j < size; j++) {
            if (timeMs[j] >= newest - windowMs) {
                inWindow++;
            }
        }
        int skip = Math.max(0, inWindow - Window.MAX_EVENTS);
        int out = 0;
        for (int j = 0; j < size; j++) {
            if (timeMs[j] < newest - windowMs || skip-- > 0) {
                seen.remove(txn[j]);
                continue;
            }
            timeMs[out] = timeMs[j];
            amount[out] = amount[j];
            txn[out] = txn[j];
            actor[out] = actor[j];
            user[out] = user[j];
            out++;
        }
        for (int j = out; j < size; j++) {
            txn[j] = actor[j] = user[j] = null;
        }
        size = out;
    }

    /** In {@link Window#SCHEMA}'s encoding (one state variable for both): the actor in {@code src},
     * the attributes a shared window does not keep as empty arrays. */
    Row toRow() {
        String[] none = new String[0];
        return RowFactory.create(Arrays.copyOf(timeMs, size), Arrays.copyOf(amount, size), Arrays.copyOf(txn, size),
                none, Arrays.copyOf(actor, size), Arrays.copyOf(user, size), none, none, none, new boolean[0]);
    }

    static SharedWindow fromRow(Row row) {
        SharedWindow w = new SharedWindow();
        java.util.List<Long> times = row.getList(0);
        java.util.List<Double> amounts = row.getList(1);
        java.util.List<String> txns = row.getList(2), actors = row.getList(4), users = row.getList(5);
        int n = times.size();
        int capacity = Math.max(8, n * 2);
        w.timeMs = new long[capacity];
        w.amount = new double[capacity];
        w.txn = new String[capacity];
        w.actor = new String[capacity];
        w.user = new String[capacity];
        for (int j = 0; j < n; j++) {
            w.timeMs[j] = times.get(j);
            w.amount[j] = amounts.get(j);
            w.txn[j] = txns.get(j);
            w.actor[j] = actors.get(j);
            w.user[j] = users.get(j);
            w.seen.add(w.txn[j]);
        }
        w.size = n;
        return w;
    }
}
