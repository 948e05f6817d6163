package io.mmdit4j.spark;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The end of a run: how many rows the table had, made now, failed, were done before; the rate; each executor's share.
 *
 * @param rows          rows of the input
 * @param repeated      rows whose settings repeat an earlier row's exactly (hashed ids): made once
 * @param made          images made by this run
 * @param failed        rows that failed in this run
 * @param doneBefore    rows a previous run had made (kept as they were)
 * @param seconds       wall time of the generation (from the job's start to its last task)
 * @param executors     this run's work per executor
 */
public record JobSummary(String run, long rows, long repeated, long made, long failed, long doneBefore, double seconds, int partitions,
                         List<ExecutorLoad> executors, Path out) {

    /** One executor's part: images made, rows failed, model loads and their time, and time spent generating and writing. */
    public record ExecutorLoad(String executor, long images, long failed, int loads, double loadSeconds, double busySeconds) {}

    public double imagesPerSecond() {
        return seconds > 0 ? made / seconds : 0;
    }

    public List<String> lines() {
        List<String> l = new ArrayList<>();
        l.add(String.format(Locale.ROOT, "mmdit4j spark: %d rows%s: %d images made, %d failed, %d done before; %d images in %.1f s = %.2f images/s over %d partitions",
                rows, repeated > 0 ? " (" + repeated + " repeating another row's settings, made once)" : "", made, failed, doneBefore, made, seconds,
                imagesPerSecond(), partitions));
        for (ExecutorLoad e : executors) {
            l.add(String.format(Locale.ROOT, "  executor %s: %d images, %d failed, model loaded %d time%s (%.1f s), busy %.1f s", e.executor(), e.images(),
                    e.failed(), e.loads(), e.loads() == 1 ? "" : "s", e.loadSeconds(), e.busySeconds()));
        }
        l.add("  results: " + out.resolve(Layout.RESULTS_PARQUET) + ", " + out.resolve(Layout.RESULTS_CSV) + "; images in " + out.resolve(Layout.IMAGES));
        return l;
    }
}
