package io.mmdit4j.spark;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Spark stays in this module: the command line's class path (which ./mmdit runs for every other command) has none of it. */
class SparkStaysOutTest {

    @Test
    void theCommandLinesClassPathCarriesNoSpark() throws IOException {
        Path cp = Path.of(System.getProperty("mmdit.home", ".")).resolve("cli/target/classpath.txt");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(cp), "the cli module is packaged first in the reactor build");
        List<String> jars = Arrays.stream(Files.readString(cp).trim().split(File.pathSeparator)).map(p -> Path.of(p).getFileName().toString()).toList();
        assertTrue(jars.stream().noneMatch(j -> j.startsWith("spark-") || j.startsWith("scala-") || j.startsWith("hadoop-") || j.startsWith("parquet-")),
                jars.toString());
        assertTrue(jars.size() < 40, jars.size() + " jars: " + jars);
    }
}
