// What JDBC-based tools (DBeaver's navigator, Metabase's sync) ask townstat serve:
// DatabaseMetaData.getTables / getColumns, with the Chinese labels as REMARKS, and a
// prepared statement. Run with Java 11+ as a single-file program:
//   java -cp /usr/share/java/postgresql.jar JdbcMetadata.java PORT USER PASSWORD
// Prints "jdbc: N passed, M failed" last and exits 1 when M > 0.
import java.sql.*;
import java.util.*;

public class JdbcMetadata {
    static int passed = 0, failed = 0;

    static void check(String name, boolean ok, Object detail) {
        if (ok) { passed++; System.out.println("ok   " + name); }
        else { failed++; System.out.println("FAIL " + name + ": " + detail); }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/townstat";
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection c = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = c.getMetaData();
            Map<String, String> tables = new HashMap<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.put(rs.getString("TABLE_NAME"), rs.getString("REMARKS"));
            } catch (SQLException e) { check("getTables", false, e.getMessage()); }
            check("getTables lists the marts", tables.containsKey("town_year") && tables.containsKey("city_year"), tables.keySet());
            check("getTables: table label as REMARKS", "专业镇年度指标".equals(tables.get("town_year")), tables.get("town_year"));

            Map<String, String[]> cols = new LinkedHashMap<>();
            try (ResultSet rs = md.getColumns(null, "public", "town_year", "%")) {
                while (rs.next()) cols.put(rs.getString("COLUMN_NAME"),
                    new String[] {rs.getString("TYPE_NAME"), rs.getString("REMARKS"), rs.getString("IS_NULLABLE")});
            } catch (SQLException e) { check("getColumns", false, e.getMessage()); }
            check("getColumns lists the columns", cols.containsKey("revenue") && cols.containsKey("town_id"), cols.keySet());
            String[] revenue = cols.getOrDefault("revenue", new String[3]);
            check("getColumns: label as REMARKS", "营业收入(元)".equals(revenue[1]), Arrays.toString(revenue));
            String[] townId = cols.getOrDefault("town_id", new String[3]);
            check("getColumns: type and nullability", "text".equals(townId[0]) && "NO".equals(townId[2]), Arrays.toString(townId));

            try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM town_year WHERE year = ?")) {
                ps.setLong(1, 2025);
                try (ResultSet rs = ps.executeQuery()) {
                    check("prepared statement", rs.next() && rs.getLong(1) > 0, "no rows");
                }
            }
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE town_year");
                check("DROP refused", false, "it ran");
            } catch (SQLException e) {
                check("DROP refused with 42501", "42501".equals(e.getSQLState()), e.getSQLState());
            }
        }
        System.out.println("jdbc: " + passed + " passed, " + failed + " failed");
        System.exit(failed > 0 ? 1 : 0);
    }
}
