package io.mmdit4j.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarFile;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code src/cuda} (the code only the {@code cuda} profile builds: the CUDA graph capture on cudart's bindings) compiles
 * against the engine and the real {@code org.bytedeco:cuda} API jar (a test dependency, no natives), and the class its
 * service file names is a {@link StepGraph.Capture}. No machine here has a GPU, so this is how that code is kept honest
 * between GPU runs: it cannot rot into something that no longer compiles.
 */
class CudaSourcesCompileTest {
    @Test
    void theCudaSourcesCompileAgainstCudartsBindingsAndProvideTheCapture(@TempDir Path out) throws Exception {
        Path sources = Path.of("src/cuda/java");
        List<String> files;
        try (Stream<Path> s = Files.walk(sources)) {
            files = s.filter(p -> p.toString().endsWith(".java")).map(Path::toString).toList();
        }
        assertFalse(files.isEmpty(), "no sources under " + sources.toAbsolutePath());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "the tests need a JDK");
        String classPath = String.join(File.pathSeparator, classPath());
        assertTrue(classPath.contains("cuda-13.1"), "the org.bytedeco:cuda API jar is not on the test class path: " + classPath);
        List<String> args = new ArrayList<>(List.of("-d", out.toString(), "-cp", classPath, "-proc:none", "-Xlint:none"));
        args.addAll(files);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = javac.run(null, null, err, args.toArray(String[]::new));
        assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));

        String provider = Files.readString(Path.of("src/cuda/resources/META-INF/services/" + StepGraph.Capture.class.getName())).strip();
        try (URLClassLoader loader = new URLClassLoader(new URL[] {out.toUri().toURL()}, getClass().getClassLoader())) {
            Class<?> c = Class.forName(provider, false, loader); // not initialised: its natives are not here
            assertTrue(StepGraph.Capture.class.isAssignableFrom(c), provider + " is not a StepGraph.Capture");
        }
    }

    /** The test class path's entries (surefire may hand the JVM a manifest-only jar that lists them). */
    private static List<String> classPath() throws IOException {
        List<String> entries = new ArrayList<>(List.of(System.getProperty("java.class.path").split(File.pathSeparator)));
        if (entries.size() == 1 && entries.get(0).contains("surefirebooter")) {
            try (JarFile jar = new JarFile(entries.get(0))) {
                String listed = jar.getManifest().getMainAttributes().getValue("Class-Path");
                entries.clear();
                for (String url : listed.split(" ")) {
                    if (!url.isBlank()) entries.add(Path.of(java.net.URI.create(url)).toString());
                }
            }
        }
        return entries;
    }
}
