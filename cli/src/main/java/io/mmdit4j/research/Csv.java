package io.mmdit4j.research;

import org.apache.commons.csv.CSVFormat;
import org.apache.commons.csv.CSVParser;
import org.apache.commons.csv.CSVRecord;

import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/** RFC 4180 CSV through Apache Commons CSV: fields with commas, quotes or line breaks are quoted, quotes doubled. */
public final class Csv {
    private Csv() {}

    /** Lines end in {@code \n} (written by the callers); quoting is Commons CSV's minimal quoting. */
    private static final CSVFormat FORMAT = CSVFormat.RFC4180.builder().setRecordSeparator("\n").setIgnoreEmptyLines(true).build();

    public static String line(List<?> fields) {
        return FORMAT.format(fields.stream().map(f -> f == null ? "" : f.toString()).toArray());
    }

    /**
     * Parses a whole CSV text into rows (quoted fields may span lines). A file cut short inside a quoted field (a run killed
     * while appending) ends at the last complete row: that row is dropped rather than an error.
     */
    public static List<List<String>> parse(String text) {
        List<List<String>> rows = new ArrayList<>();
        try (CSVParser parser = CSVParser.parse(new StringReader(text), FORMAT)) {
            Iterator<CSVRecord> it = parser.iterator();
            while (true) {
                CSVRecord r;
                try {
                    if (!it.hasNext()) break;
                    r = it.next();
                } catch (UncheckedIOException | IllegalStateException e) { // EOF inside a quoted field
                    break;
                }
                rows.add(r.toList());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return rows;
    }
}
