/// A plain-text table with aligned columns, for terminals and for pasting into an audit ticket.
struct TextTable {
    var headers: [String]
    /// Columns aligned right (counts).
    var numeric: Set<Int> = []
    var rows: [[String]] = []

    mutating func add(_ row: [String]) {
        rows.append(row)
    }

    /// The table, each line indented by `indent`, column separated by two spaces; no trailing spaces.
    func render(indent: String = "  ") -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        var out = ""
        for row in [headers] + rows {
            var cells: [String] = []
            for (column, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[column] - cell.count))
                let last = column == row.count - 1
                cells.append(numeric.contains(column) ? pad + cell : (last ? cell : cell + pad))
            }
            var line = indent + cells.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
