package io.mmdit4j.spark;

import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.jdk.javaapi.CollectionConverters;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Per-partition progress in the driver's log: when a generation task ends, its counts (from the job's named accumulators,
 * which Spark's UI also shows per task) and the running total.
 */
final class ProgressListener extends SparkListener {
    private static final Logger LOG = LoggerFactory.getLogger(SparkJob.class);
    private final long imagesId, failedId, skippedId;
    private final long rows;
    private final AtomicLong finished = new AtomicLong();

    ProgressListener(long imagesId, long failedId, long skippedId, long rows) {
        this.imagesId = imagesId;
        this.failedId = failedId;
        this.skippedId = skippedId;
        this.rows = rows;
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd e) {
        long images = 0, failed = 0, skipped = 0;
        boolean ours = false;
        for (AccumulableInfo a : CollectionConverters.asJava(e.taskInfo().accumulables())) {
            long v = a.update().isDefined() && a.update().get() instanceof Number n ? n.longValue() : 0;
            if (a.id() == imagesId) images = v;
            else if (a.id() == failedId) failed = v;
            else if (a.id() == skippedId) skipped = v;
            else continue;
            ours = true;
        }
        if (!ours) return;
        if (!e.taskInfo().successful()) {
            LOG.warn("partition {} failed on executor {}: {}", e.taskInfo().index(), e.taskInfo().executorId(), e.reason());
            return;
        }
        long total = finished.addAndGet(images + failed + skipped);
        LOG.info("partition {} done on executor {} in {} s: {} images, {} failed, {} done before ({} of {} rows)", e.taskInfo().index(),
                e.taskInfo().executorId(), String.format(java.util.Locale.ROOT, "%.1f", e.taskInfo().duration() / 1e3), images, failed, skipped,
                total, rows);
    }
}
