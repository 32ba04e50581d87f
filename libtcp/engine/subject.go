package engine

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// OpenSSL NIDs of the subject fields tcpgo can look up, so that C++ code can
// pass NID_commonName and friends unchanged.
const (
	NIDCommonName             = 13
	NIDCountryName            = 14
	NIDLocalityName           = 15
	NIDStateOrProvinceName    = 16
	NIDOrganizationName       = 17
	NIDOrganizationalUnitName = 18
	NIDEmailAddress           = 48
	NIDSerialNumber           = 105
)

var nidOID = map[int]asn1.ObjectIdentifier{
	NIDCommonName:             {2, 5, 4, 3},
	NIDCountryName:            {2, 5, 4, 6},
	NIDLocalityName:           {2, 5, 4, 7},
	NIDStateOrProvinceName:    {2, 5, 4, 8},
	NIDOrganizationName:       {2, 5, 4, 10},
	NIDOrganizationalUnitName: {2, 5, 4, 11},
	NIDEmailAddress:           {1, 2, 840, 113549, 1, 9, 1},
	NIDSerialNumber:           {2, 5, 4, 5},
}

// subjectPart returns the first value of the field nid in subj.
func subjectPart(subj *pkix.Name, nid int) (string, error) {
	oid, ok := nidOID[nid]
	if !ok {
		return "", newError(ErrInvalidArg, nil, "subject field NID %d not supported", nid)
	}
	if subj == nil {
		return "", newError(ErrNoField, nil, "the peer presented no certificate")
	}
	for _, atv := range subj.Names {
		if atv.Type.Equal(oid) {
			return fmt.Sprint(atv.Value), nil
		}
	}
	return "", newError(ErrNoField, nil, "certificate subject has no field with NID %d", nid)
}
