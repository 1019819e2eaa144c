package collect

import (
	"context"

	"github.com/proxmox-agent/proxmox-agent/internal/parse/zfs"
)

// The zfs list forms the dataset parsers expect.
var (
	datasetArgsJSON = []string{"list", "-j", "--json-int", "-t", "filesystem,volume", "-o", zfs.DatasetPropertiesJSON}
	datasetArgsText = []string{"list", "-H", "-p", "-t", "filesystem,volume", "-o", zfs.DatasetColumnsText}
)

// Datasets is the zfs_datasets source: zfs list of filesystems and volumes.
type Datasets struct {
	Zfs zfsTool
}

// Collect runs zfs list -j, or the -H -p text form on OpenZFS 2.2.
func (d *Datasets) Collect(ctx context.Context) (any, error) {
	out, isJSON, err := d.Zfs.first(ctx, datasetArgsJSON, datasetArgsText)
	if err != nil {
		return nil, err
	}
	if isJSON {
		return zfs.ParseDatasetsJSON(out)
	}
	return zfs.ParseDatasetsText(out)
}
