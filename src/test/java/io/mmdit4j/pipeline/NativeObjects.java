package io.mmdit4j.pipeline;

import java.util.Arrays;

/**
 * Native objects (JavaCPP pointers with a deallocator) one run of some work leaves alive: after 3 warm-up runs, the median
 * over 11 runs of the change of {@link org.bytedeco.javacpp.Pointer#totalCount} across one run. No {@code System.gc()}: an
 * object nobody closed stays counted until a collection finds it; a collection during a run (it frees earlier garbage too)
 * makes that run's change small or negative, which the median ignores. Comparing two ways of doing the same work shows
 * whether one leaves more behind.
 */
public final class NativeObjects {
    private NativeObjects() {}

    public static long perRun(Runnable run) {
        for (int i = 0; i < 3; i++) run.run();
        long[] left = new long[11];
        for (int i = 0; i < left.length; i++) {
            long before = org.bytedeco.javacpp.Pointer.totalCount();
            run.run();
            left[i] = org.bytedeco.javacpp.Pointer.totalCount() - before;
        }
        Arrays.sort(left);
        return left[left.length / 2];
    }
}
