package fraud.velocity;

import java.time.Duration;

import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.StatefulProcessor;
import org.apache.spark.sql.streaming.TTLConfig;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.streaming.TimerValues;
import org.apache.spark.sql.streaming.ValueState;

import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;

/**
 * transformWithState processor: one {@link Window} per actor and one {@link SharedWindow} per shared
 * attribute value, kept with a processing-time TTL. Both live in the one state variable, in the
 * actor window's encoding ({@link SharedWindow#toRow}): a checkpoint written before shared windows
 * existed keeps its state schema.
 */
final class VelocityProcessor extends StatefulProcessor<String, Row, Row> {
    private static final long serialVersionUID = 1L;
    private final Velocity velocity;
    private final long ttlMs;
    private transient ValueState<Row> window;

    VelocityProcessor(Velocity velocity, long ttlMs) {
        this.velocity = velocity;
        this.ttlMs = ttlMs;
    }

    @Override
    public void init(OutputMode outputMode, TimeMode timeMode) {
        window = getHandle().getValueState("window", Encoders.row(Window.SCHEMA),
                TTLConfig.apply(Duration.ofMillis(ttlMs)));
    }

    @Override
    public Iterator<Row> handleInputRows(String key, Iterator<Row> rows, TimerValues timerValues) {
        Row stored = window.get();  // null when absent or expired: one state-store read, not two
        if (Velocity.isShared(key)) {
            SharedWindow current = stored == null ? new SharedWindow() : SharedWindow.fromRow(stored);
            Velocity.Result result = velocity.processShared(CollectionConverters.asJava(rows), current);
            if (result.windowChanged) {
                window.update(current.toRow());
            }
            return CollectionConverters.asScala(result.rows.iterator());
        }
        Window current = stored == null ? new Window() : Window.fromRow(stored);
        Velocity.Result result = velocity.process(CollectionConverters.asJava(rows), current);
        if (result.windowChanged) {
            window.update(current.toRow());
        }
        return CollectionConverters.asScala(result.rows.iterator());
    }
}
