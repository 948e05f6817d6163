package io.mmdit4j.server;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** Named threads, so a thread left behind after shutdown says whose it is (the tests look for "mmdit-" threads). */
final class Threads {
    private Threads() {}

    static ThreadFactory named(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, n.getAndIncrement() == 0 ? name : name + "-" + n.get());
            t.setDaemon(false);
            return t;
        };
    }
}
