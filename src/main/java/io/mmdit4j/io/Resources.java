package io.mmdit4j.io;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.FileSystemAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.util.Map;

/** Folders of the library's own resources (model descriptors, tokenizer files) as paths, from a jar or a classes folder. */
public final class Resources {
    private Resources() {}

    /** The resource folder {@code name} (e.g. {@code /mmdit4j/models}; the first class-path entry that has it) as a path, or null when it is not on the class path. */
    public static Path folder(String name) {
        URL url = Resources.class.getResource(name);
        if (url == null) return null;
        try {
            URI uri = url.toURI();
            if ("jar".equals(uri.getScheme())) {
                try {
                    FileSystems.newFileSystem(uri, Map.of());
                } catch (FileSystemAlreadyExistsException e) {
                    // opened before: Path.of finds it
                }
            }
            return Path.of(uri);
        } catch (URISyntaxException | IOException e) {
            throw new ModelFormatException("cannot open the library's resources at " + url + ": " + e.getMessage(), e);
        }
    }
}
